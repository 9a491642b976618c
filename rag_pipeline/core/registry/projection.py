"""The status projection, written by the ingestion step and by the reconciler."""

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from rag_pipeline.core.registry.database import LIVE_VALUES, Part
from rag_pipeline.core.registry.model import STAGES, DocumentStatus, StageState, documents, stages


class Projection(Part):
    def start(self, doc_ids: Sequence[str], run_id: str, selected: Sequence[str]) -> None:
        """A run took these documents on: processing, with its selected stages in progress."""
        now = time.time()
        with self.db.transaction(write=True) as conn:
            live = self._live_ids(conn, doc_ids)
            if not live:
                return
            conn.execute(
                documents.update()
                .where(documents.c.id.in_(live))
                .values(
                    status=DocumentStatus.processing.value,
                    run_id=run_id,
                    submitted_at=sa.func.coalesce(documents.c.submitted_at, now),
                    error_stage=None,
                    error_code=None,
                    error_message=None,
                    updated_at=now,
                )
            )
            for stage in selected:
                conn.execute(
                    stages.update()
                    .where(stages.c.document_id.in_(live), stages.c.stage == stage)
                    .values(
                        state=StageState.in_progress.value,
                        run_id=run_id,
                        # A failed stage's time is when it failed: nothing to go back to.
                        at=sa.case(
                            (stages.c.state == StageState.failed.value, None),
                            else_=stages.c.at,
                        ),
                    )
                )
                have = {
                    row.document_id
                    for row in conn.execute(
                        sa.select(stages.c.document_id).where(
                            stages.c.document_id.in_(live), stages.c.stage == stage
                        )
                    )
                }
                missing = [doc_id for doc_id in live if doc_id not in have]
                if missing:
                    self._put_stage(conn, missing, stage, StageState.in_progress, None, run_id, {})

    def stage_done(self, doc_id: str, stage: str, run_id: str, metadata: dict[str, Any]) -> None:
        self.stages_done(stage, run_id, {doc_id: metadata})

    def stages_done(self, stage: str, run_id: str, done: dict[str, dict[str, Any]]) -> None:
        """A stage materialized for these documents (id -> its metadata), in one transaction;
        documents no longer live are left as they are."""
        now = time.time()
        with self.db.transaction(write=True) as conn:
            live = self._live_ids(conn, list(done))
            if not live:
                return
            conn.execute(
                stages.delete().where(stages.c.document_id.in_(live), stages.c.stage == stage)
            )
            conn.execute(
                stages.insert(),
                [
                    {
                        "document_id": doc_id,
                        "stage": stage,
                        "state": StageState.materialized.value,
                        "at": now,
                        "run_id": run_id,
                        "metadata": done[doc_id],
                    }
                    for doc_id in live
                ],
            )
            values: dict[str, Any] = {"updated_at": now}
            if stage == "vector_index":
                values.update(status=DocumentStatus.indexed.value, indexed_at=now)
            if stage != "document_chunks":
                conn.execute(documents.update().where(documents.c.id.in_(live)).values(**values))
                return
            for doc_id in live:
                own = dict(values)
                if "chunks" in done[doc_id]:
                    own["chunks"] = int(done[doc_id]["chunks"])
                conn.execute(documents.update().where(documents.c.id == doc_id).values(**own))

    def stage_failed(self, doc_id: str, stage: str, run_id: str, code: str, message: str) -> None:
        now = time.time()
        with self.db.transaction(write=True) as conn:
            if not self._live_ids(conn, [doc_id]):
                return
            self._fail(conn, doc_id, stage, run_id, code, message, now)

    def finish(self, doc_ids: Sequence[str], run_id: str) -> None:
        """The run is done with these documents: stages it left in progress go back to what
        they were before it, and status follows the stages."""
        now = time.time()
        with self.db.transaction(write=True) as conn:
            ids = [
                row.id
                for row in conn.execute(
                    sa.select(documents.c.id).where(
                        documents.c.id.in_(list(doc_ids)),
                        documents.c.run_id == run_id,
                        documents.c.status == DocumentStatus.processing.value,
                    )
                )
            ]
            if not ids:
                return
            self._settle(conn, ids)
            for doc in self.db.load_many(conn, ids):
                states = [doc.stages[s].state for s in STAGES]
                if doc.stages["vector_index"].state == StageState.materialized:
                    status = DocumentStatus.indexed
                elif StageState.materialized in states:
                    status = DocumentStatus.processing
                else:
                    status = DocumentStatus.queued
                conn.execute(
                    documents.update()
                    .where(documents.c.id == doc.id)
                    .values(status=status.value, updated_at=now)
                )

    def run_stopped(
        self,
        doc_ids: Sequence[str],
        run_id: str | None,
        message: str,
        created_at: float,
        finished_runs: Sequence[str] = (),
    ) -> list[str]:
        """A run died for good: its unfinished documents fail at their first unfinished stage.

        Only documents the run was (or would have been) working on: still queued or
        processing, not taken on by another live run since (`finished_runs` are over), and
        registered before the run was created (a document deleted and added again is not the
        run's). Returns the ids failed.
        """
        now = time.time()
        failed = []
        with self.db.transaction(write=True) as conn:
            query = sa.select(documents.c.id, documents.c.run_id).where(
                documents.c.id.in_(list(doc_ids)),
                documents.c.registered_at <= created_at,
                documents.c.status.in_(
                    [DocumentStatus.queued.value, DocumentStatus.processing.value]
                ),
            )
            mine = {None, run_id, *finished_runs}
            candidates = [r.id for r in conn.execute(query) if r.run_id in mine]
            self._settle(conn, candidates)
            for doc in self.db.load_many(conn, candidates):
                stage = next(
                    (s for s in STAGES if doc.stages[s].state != StageState.materialized),
                    "vector_index",
                )
                self._fail(conn, doc.id, stage, run_id, "run_failed", message, now)
                failed.append(doc.id)
        return failed

    def _fail(
        self,
        conn: sa.Connection,
        doc_id: str,
        stage: str,
        run_id: str | None,
        code: str,
        message: str,
        now: float,
    ) -> None:
        self._put_stage(conn, [doc_id], stage, StageState.failed, now, run_id, {})
        self._settle(conn, [doc_id])
        conn.execute(
            documents.update()
            .where(documents.c.id == doc_id)
            .values(
                status=DocumentStatus.failed.value,
                run_id=run_id,
                error_stage=stage,
                error_code=code,
                error_message=message,
                updated_at=now,
            )
        )

    def _settle(self, conn: sa.Connection, doc_ids: Sequence[str]) -> None:
        """Stages a run left in progress go back to what they were before it took them on:
        materialized if they had been (they keep that time), pending otherwise."""
        for had_run, new_state in ((False, StageState.pending), (True, StageState.materialized)):
            conn.execute(
                stages.update()
                .where(
                    stages.c.document_id.in_(list(doc_ids)),
                    stages.c.state == StageState.in_progress.value,
                    stages.c.at.is_not(None) if had_run else stages.c.at.is_(None),
                )
                .values(state=new_state.value)
            )

    def _put_stage(
        self,
        conn: sa.Connection,
        doc_ids: Sequence[str],
        stage: str,
        new_state: StageState,
        at: float | None,
        run_id: str | None,
        metadata: dict[str, Any],
    ) -> None:
        conn.execute(
            stages.delete().where(stages.c.document_id.in_(list(doc_ids)), stages.c.stage == stage)
        )
        conn.execute(
            stages.insert(),
            [
                {
                    "document_id": doc_id,
                    "stage": stage,
                    "state": new_state.value,
                    "at": at,
                    "run_id": run_id,
                    "metadata": metadata,
                }
                for doc_id in doc_ids
            ],
        )

    def _live_ids(self, conn: sa.Connection, doc_ids: Sequence[str]) -> list[str]:
        query = sa.select(documents.c.id).where(
            documents.c.id.in_(list(doc_ids)), documents.c.status.in_(LIVE_VALUES)
        )
        return [row.id for row in conn.execute(query)]
