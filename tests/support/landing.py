"""The landing-zone sensor as the daemon evaluates it, and files dropped the way people do."""

import os
import shutil
import time
from pathlib import Path
from typing import Any

from dagster import SensorResult, build_sensor_context

from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.sensors import landing_zone_tick


class Daemon:
    """Evaluates the sensor the way the daemon does: apply partitions, keep the cursor."""

    def __init__(self, instance: Any, store: DocumentStore) -> None:
        self.instance = instance
        self.store = store
        self.cursor: str | None = None

    def tick(self, looked_at: float | None = None) -> SensorResult:
        """A tick looking at the landing zone at `looked_at` (now, unless a test says when)."""
        context = build_sensor_context(instance=self.instance, cursor=self.cursor)
        result = landing_zone_tick(
            context, self.store, time.time() if looked_at is None else looked_at
        )
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, request.partition_keys
            )
        self.cursor = result.cursor
        return result


def drop(
    corpus: Path, rel: str, store: DocumentStore, name: str | None = None, age: float = 5
) -> Path:
    target = store.landing_dir / (name or Path(rel).name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus / rel, target)
    past = time.time() - age
    os.utime(target, (past, past))
    return target


def keys(result: SensorResult) -> list[str]:
    return [k for r in result.dynamic_partitions_requests or [] for k in r.partition_keys]
