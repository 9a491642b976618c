"""What the ingest benchmark measures of the pipeline: the sample dropped into the landing zone
of a running stack, each document until it is indexed or failed, and each run's timeline from its
event log (bench/ingest/summary.py turns them into figures)."""

import os
import shutil
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.harness.processes import tail
from bench.harness.stack import run_events

TIMEOUT_SECONDS = 40 * 60
# Terminal times come from event timestamps, so a slow poll costs no precision, only CPU
# that the runs would otherwise have on a small machine.
POLL_SECONDS = 5.0


def sample(corpus: Path, limit: int | None) -> list[Path]:
    squad = sorted((corpus / "retrieval" / "squad_v1.1_dev" / "docs").glob("*.txt"))
    return [*squad, *sorted((corpus / "pdf").glob("*.pdf"))][:limit]


def drop(paths: list[Path], landing_dir: Path) -> dict[str, float]:
    """Deliver each file as careful writers do: a hidden .part name, then an atomic rename."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    landed = {}
    for path in paths:
        part = landing_dir / f".{path.name}.part"
        shutil.copyfile(path, part)
        os.rename(part, landing_dir / path.name)
        landed[path.name] = time.time()
    return landed


def pipeline(paths: list[Path], data_dir: Path, log: Path) -> dict[str, Any]:
    from dagster import DagsterInstance, RunsFilter

    from rag_pipeline.core.documents.reports import DocumentStatus, document_reports
    from rag_pipeline.core.storage.data_dir import DocumentStore

    store = DocumentStore(data_dir)
    landed = drop(paths, store.landing_dir)
    with DagsterInstance.get() as instance:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        shown = 0.0
        while True:
            reports = document_reports(store)
            rejected = [r for r in reports if r.status == DocumentStatus.rejected]
            terminal = [
                r for r in reports if r.status in (DocumentStatus.indexed, DocumentStatus.failed)
            ]
            if len(terminal) + len(rejected) >= len(paths):
                break
            if time.monotonic() > deadline:
                states = {r.filename: str(r.status) for r in reports}
                raise TimeoutError(f"not terminal after {TIMEOUT_SECONDS} s: {states}\n{tail(log)}")
            if time.monotonic() - shown > 30:
                shown = time.monotonic()
                counts = Counter(str(r.status) for r in reports)
                print(f"  {_clock()} {dict(counts)}, {len(rejected)} rejected", flush=True)
            time.sleep(POLL_SECONDS)
        docs = []
        for report in reports:
            source = store.read_source(report.id)
            name = Path(source.landing_path).name if source and source.landing_path else None
            stage = report.stages[report.error.stage] if report.error else None
            ended = stage.failed_at if stage else report.stages["vector_index"].materialized_at
            run_id = report.stages["raw_document"].run_id
            record = instance.get_run_record_by_id(run_id) if run_id else None
            docs.append(
                {
                    "file": name or report.filename,
                    "status": str(report.status),
                    "chunks": report.chunks or 0,
                    "landed": landed.get(name or "", float("nan")),
                    "run_id": run_id,
                    "run_start": record.start_time if record else None,
                    "terminal": _ts(ended),
                    "error": f"{report.error.stage} [{report.error.code}] {report.error.message}"
                    if report.error
                    else None,
                }
            )
        # The last run ends just after its last document: wait, so its timeline is whole.
        landing_runs = RunsFilter(tags={"rag/source": "landing_zone"})
        for _ in range(120):
            if all(r.dagster_run.is_finished for r in instance.get_run_records(landing_runs)):
                break
            time.sleep(1)
        runs = [
            run_timeline(instance, rec, reports) for rec in instance.get_run_records(landing_runs)
        ]
    runs.sort(key=lambda run: run["events"].get("RUN_ENQUEUED", 0.0))
    return {
        "first_landed": min(landed.values()),
        "documents": docs,
        "runs": runs,
        "rejected": [
            f"{r.filename} [{r.error.code}] {r.error.message}" if r.error else f"{r.filename}"
            for r in rejected
        ],
    }


def run_timeline(instance: Any, record: Any, reports: list[Any]) -> dict[str, Any]:
    run = record.dagster_run
    mine = [r for r in reports if r.stages["raw_document"].run_id == run.run_id]
    batches = [r.stages["chunk_embeddings"].metadata.get("batch_seconds") for r in mine]
    return {
        "run_id": run.run_id,
        "status": run.status.value,
        "documents": int(run.tags.get("rag/documents", len(mine))),
        "chunks": sum(r.chunks or 0 for r in mine),
        "events": run_events(instance, run.run_id),
        # Shared by the run's documents; under the default launcher the run's first embed call
        # also loads the model.
        "embed_batch_seconds": max((float(b) for b in batches if b is not None), default=None),
    }


def _ts(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")
