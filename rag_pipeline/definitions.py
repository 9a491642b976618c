"""The Definitions object, with its resources and schedules built from the settings."""

import json

from dagster import Definitions

from rag_pipeline.execution.executor import warm_executor
from rag_pipeline.orchestration.assets import ingest_documents, ingest_job
from rag_pipeline.orchestration.jobs import backup_job, cleanup_job
from rag_pipeline.orchestration.resources import (
    ChunkingResource,
    DocumentStoreResource,
    EmbedderResource,
    OperationsResource,
    VectorIndexResource,
)
from rag_pipeline.orchestration.schedules import build_schedules
from rag_pipeline.orchestration.sensors import landing_zone_sensor, sources_sensor
from rag_pipeline.settings import Settings, get_settings


def build_resources(settings: Settings) -> dict[str, object]:
    return {
        "documents": DocumentStoreResource(
            data_dir=str(settings.data_dir), registry_url=settings.registry_url
        ),
        "embedder": EmbedderResource(
            model_name=settings.embedding_model,
            batch_size=settings.embedding_batch_size,
            torch_threads=settings.torch_threads,
            endpoints_json=json.dumps(
                {name: e.model_dump() for name, e in settings.embedding_endpoints.items()}
            ),
        ),
        "vector_index": VectorIndexResource(
            chroma_url=settings.chroma_url, collection=settings.chroma_collection
        ),
        "chunking": ChunkingResource(
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            extraction_timeout_seconds=settings.extraction_timeout_seconds,
            ocr_languages=list(settings.ocr_language_sets),
            ocr_page_timeout_seconds=settings.ocr_page_timeout_seconds,
            extraction_budget_seconds=settings.extraction_budget_seconds,
            extract_memory_mb=settings.extract_memory_mb,
            max_pages=settings.max_pages,
            max_image_megapixels=settings.max_image_megapixels,
            max_document_chars=settings.max_document_chars,
            max_inflated_mb=settings.max_inflated_mb,
            max_zip_entries=settings.max_zip_entries,
            max_zip_ratio=settings.max_zip_ratio,
        ),
        "operations": OperationsResource(
            backup_dir=str(settings.backup_dir),
            backup_retention_days=settings.backup_retention_days,
            cleanup_processed_after_hours=settings.cleanup_processed_after_hours,
            cleanup_rejected_after_days=settings.cleanup_rejected_after_days,
            cleanup_partial_after_hours=settings.cleanup_partial_after_hours,
            run_retention_days=settings.run_retention_days,
        ),
    }


def build_definitions(settings: Settings) -> Definitions:
    return Definitions(
        assets=[ingest_documents],
        jobs=[ingest_job, backup_job, cleanup_job],
        sensors=[landing_zone_sensor, sources_sensor, *build_schedules(settings)],
        resources=build_resources(settings),
        executor=warm_executor,
    )


defs = build_definitions(get_settings())
