"""What the API and the CLI show of a document: a report read from the registry's projection.

The ingestion step writes the projection where it logs each materialization or failure, so a
read is one indexed query whatever the corpus size (orchestration/reconcile.py keeps it true
for runs that died).
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rag_pipeline.core.registry import STAGES, Document, DocumentStatus, StageState
from rag_pipeline.core.storage.data_dir import DocumentStore

__all__ = ["STAGES", "DocumentReport", "DocumentStatus", "StageState"]


@dataclass
class StageReport:
    state: StageState = StageState.pending
    materialized_at: str | None = None
    failed_at: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ErrorReport:
    stage: str
    code: str
    message: str


@dataclass
class DocumentReport:
    id: str
    collection: str
    filename: str | None
    metadata: dict[str, Any]
    status: DocumentStatus
    stages: dict[str, StageReport]
    error: ErrorReport | None
    chunks: int | None
    created_at: str | None
    indexed_at: str | None
    run_ids: list[str]
    deleted_at: str | None = None
    superseded_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def report(doc: Document) -> DocumentReport:
    stages: dict[str, StageReport] = {}
    if doc.status not in (DocumentStatus.deleted, DocumentStatus.rejected):
        for name in STAGES:
            stage = doc.stages[name]
            done = stage.state == StageState.materialized
            stages[name] = StageReport(
                state=stage.state,
                materialized_at=_iso(stage.at) if done else None,
                failed_at=_iso(stage.at) if stage.state == StageState.failed else None,
                run_id=stage.run_id,
                metadata=dict(stage.metadata),
            )
    error = None
    ended_badly = (DocumentStatus.failed, DocumentStatus.rejected)
    if doc.error_code is not None and doc.status in ended_badly:
        error = ErrorReport(doc.error_stage or "", doc.error_code, doc.error_message or "")
    run_ids = {s.run_id for s in stages.values() if s.run_id}
    return DocumentReport(
        id=doc.id,
        collection=doc.collection,
        filename=doc.filename,
        metadata=dict(doc.metadata),
        status=doc.status,
        stages=stages,
        error=error,
        chunks=doc.chunks if doc.status != DocumentStatus.rejected else None,
        created_at=_iso(doc.registered_at),
        indexed_at=_iso(doc.indexed_at) if doc.status == DocumentStatus.indexed else None,
        run_ids=sorted(run_ids | ({doc.run_id} if doc.run_id else set())),
        deleted_at=_iso(doc.deleted_at),
        superseded_by=doc.superseded_by,
    )


def document_reports(
    store: DocumentStore,
    status: DocumentStatus | None = None,
    limit: int = 1_000_000,
    offset: int = 0,
    collections: Sequence[str] | None = None,
) -> list[DocumentReport]:
    """Documents in arrival order (deleted ones only when asked for by status), of every
    collection or of these."""
    docs, _ = store.registry.reads.page(
        status, limit=limit, offset=offset, include_deleted=False, collections=collections
    )
    return [report(doc) for doc in docs]


def find_report(store: DocumentStore, doc_id: str) -> DocumentReport | None:
    """One document's report, whatever became of it: live, deleted or rejected."""
    doc = store.registry.reads.get(doc_id)
    return report(doc) if doc is not None else None
