"""Reading what the pipeline did: document reports and the vector index of a test's env."""

import time
from typing import Any

from rag_pipeline.core.documents.reports import document_reports
from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.resources import INDEX_WRITE_POOL

DEADLINE_SECONDS = 60


def reports_by_id(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    store = DocumentStore(env["RAG_DATA_DIR"])
    return {r.id: r.to_dict() for r in document_reports(store)}


def vector_index(env: dict[str, str]) -> VectorIndex:
    return VectorIndex(connect(env["RAG_CHROMA_URL"]), env["RAG_CHROMA_COLLECTION"])


def pending_on_pool(instance: Any, holder: str) -> set[str]:
    """Run ids of steps named `holder` that wait for an index-write slot."""
    info = instance.event_log_storage.get_concurrency_info(INDEX_WRITE_POOL)
    return {
        str(step.run_id)
        for step in info.pending_steps
        if step.step_key == holder and step.assigned_timestamp is None
    }


def wait_until_pending_on_pool(instance: Any, holder: str) -> str:
    """The run id of the first step named `holder` seen waiting for the pool; fails on the
    deadline, so a test never goes on to assert a negative about a step that never got there."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not (waiting := pending_on_pool(instance, holder)):
        assert time.monotonic() < deadline, f"no {holder} step waited for the pool"
        time.sleep(0.2)
    return sorted(waiting)[0]
