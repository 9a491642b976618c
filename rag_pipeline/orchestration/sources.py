"""Syncing sources from Dagster and from the API: the sync wired to the instance and settings.

A sync registers documents through the documents service the way uploads are registered; the
landing-zone sensor, the one place waiting documents are claimed, turns them into partitions
and batched range runs. Two claimers could each take a document the other's unapplied tick
had claimed, so sources add no claimer of their own.
"""

import os
from collections.abc import Callable, Mapping

from dagster import DagsterInstance

from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.registry import Source
from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.sources.s3 import Bucket, S3Config
from rag_pipeline.core.sources.sync import Listing, SourceSync, SyncLimits
from rag_pipeline.core.sources.web import WebConfig, Website
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.partitions import DagsterPartitions
from rag_pipeline.orchestration.resources import api_holder_id
from rag_pipeline.settings import Settings


def source_sync(
    instance: DagsterInstance,
    store: DocumentStore,
    index: VectorIndex,
    settings: Settings,
    on_object: Callable[[str], None] | None = None,
    web_seconds: float | None = None,
) -> SourceSync:
    service = DocumentsService(store, settings.metadata_max_bytes, settings.sniff_timeout_seconds)
    return SourceSync(
        service,
        index,
        DagsterPartitions(instance, store, api_holder_id()),
        SyncLimits(
            settings.max_upload_bytes,
            settings.source_max_objects_per_sync,
            web_seconds=web_seconds,
        ),
        on_object,
    )


def opener(
    source: Source, settings: Settings, environ: Mapping[str, str] = os.environ
) -> Callable[[], Listing | Website]:
    """Opens the source when the sync starts: a bucket (a missing credential is that sync's
    error, recorded on the source), or a web site fetched under the fetch policy."""
    if source.type == "web":
        return lambda: Website(
            WebConfig.of(source.config),
            settings.fetch_policy(),
            settings.web_min_interval_seconds,
        )
    return lambda: Bucket(S3Config.of(source.config), environ)
