"""Running the pipeline from tests the way its entry points do: the CLI, a range run, a sensor
tick."""

import contextlib
import os
import shutil
import time
from pathlib import Path


def copy_corpus(corpus: Path, rel: str, dest: Path) -> Path:
    target = dest / Path(rel).name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus / rel, target)
    return target


def add_files(instance: object, paths: list[Path], **options: int) -> list[str]:
    """Register files the way `rag-pipeline add` does, returning their document ids."""
    from rag_pipeline.cli.main import main

    ids = []
    for path in paths:
        code, out = _capture(main, ["add", str(path), *_options(options)])
        assert code == 0, f"add {path.name} failed"
        ids.append(out.strip())
    return ids


def _options(options: dict[str, int]) -> list[str]:
    return [
        arg
        for name, value in options.items()
        for arg in (f"--{name.replace('_', '-')}", str(value))
    ]


def _capture(fn, argv):  # type: ignore[no-untyped-def]
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = fn(argv)
    return code, buf.getvalue()


def run_cli(argv: list[str]) -> tuple[int, str]:
    from rag_pipeline.cli.main import main

    return _capture(main, argv)


def definitions():  # type: ignore[no-untyped-def]
    """The Definitions as a code location loading now builds them, from the settings the test
    put in the environment (the module's `defs` keeps those of its first import)."""
    from rag_pipeline.definitions import build_definitions
    from rag_pipeline.settings import Settings

    return build_definitions(Settings())


def materialize(  # type: ignore[no-untyped-def]
    instance: object,
    keys: list[str],
    stages: list[str] | None = None,
    tags: dict[str, str] | None = None,
):
    """Run ingest_job over the keys as one range run, as the sensor and backfills do."""
    from dagster import AssetKey

    job = definitions().resolve_job_def("ingest_job")
    range_tags = (
        {
            "dagster/asset_partition_range_start": keys[0],
            "dagster/asset_partition_range_end": keys[-1],
        }
        if len(keys) > 1
        else {"dagster/partition": keys[0]}
    )
    return job.execute_in_process(
        instance=instance,  # type: ignore[arg-type]
        tags={**range_tags, **(tags or {})},
        asset_selection=[AssetKey(s) for s in stages] if stages else None,
        raise_on_error=False,
    )


def sensor_tick(instance: object, data_dir: str, cursor: str | None = None):  # type: ignore[no-untyped-def]
    """Evaluate the landing-zone sensor once and apply its partitions, as the daemon does."""
    from dagster import build_sensor_context

    from rag_pipeline.orchestration.resources import DocumentStoreResource
    from rag_pipeline.orchestration.sensors import landing_zone_sensor

    context = build_sensor_context(
        instance=instance,  # type: ignore[arg-type]
        cursor=cursor,
        resources={"documents": DocumentStoreResource(data_dir=data_dir)},
    )
    result = landing_zone_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)  # type: ignore[attr-defined]
    return result


def ingest_landed(instance: object, data_dir: str, settle: bool = True) -> list[str]:
    """Take everything in the landing zone and run what the sensor requests, in process."""

    if settle:
        # Uploads are fresh files: age them past the sensor's settle time instead of sleeping.
        past = time.time() - 5
        for path in Path(data_dir, "landing").rglob("*"):
            if path.is_file():
                os.utime(path, (past, past))
    result = sensor_tick(instance, data_dir)
    keys = [k for r in result.dynamic_partitions_requests or [] for k in r.partition_keys]
    for request in result.run_requests or []:
        start = request.tags["dagster/asset_partition_range_start"]
        end = request.tags["dagster/asset_partition_range_end"]
        batch = keys[keys.index(start) : keys.index(end) + 1]
        own = {name: value for name, value in request.tags.items() if name.startswith("rag/")}
        materialize(instance, batch, tags=own)
    return keys


def wait_for(predicate, timeout: float, what: str, log: Path, interval: float = 0.5):  # type: ignore[no-untyped-def]
    """The first true value of `predicate()`, polled every `interval` seconds; fails the test
    with the end of `log` (a server's log) after `timeout` seconds."""
    import pytest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"{what} not within {timeout} s\n{log.read_text()[-3000:]}")


def executing(instance: object) -> dict[str, tuple[str, int]]:
    """STARTED runs, each with the process executing it, (host, pid): the tag `rag/worker`
    ("host:pid") that the warm worker's process writes when it takes the run."""
    from dagster import DagsterRunStatus, RunsFilter

    from rag_pipeline.execution.heartbeat import WORKER_TAG

    runs = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))  # type: ignore[attr-defined]
    found: dict[str, tuple[str, int]] = {}
    for run in runs:
        host, _, pid = run.tags.get(WORKER_TAG, "").rpartition(":")
        if host and pid.isdigit():
            found[run.run_id] = (host, int(pid))
    return found


def failed_at(instance: object, run_ids: list[str]) -> dict[str, float | None]:
    """When each run was marked failed (epoch seconds); None for one that did not fail (yet)."""
    from dagster import DagsterRunStatus, RunsFilter

    if not run_ids:
        return {}
    records = instance.get_run_records(RunsFilter(run_ids=list(run_ids)))  # type: ignore[attr-defined]
    ended = {
        r.dagster_run.run_id: r.end_time
        for r in records
        if r.dagster_run.status == DagsterRunStatus.FAILURE
    }
    return {run_id: ended.get(run_id) for run_id in run_ids}


def retries_of(instance: object, run_ids: list[str]) -> dict[str, list[str]]:
    """The runs that run retries started for each run (it tags them with the run they retry)."""
    from dagster import RunsFilter
    from dagster._core.storage.tags import PARENT_RUN_ID_TAG

    return {
        run_id: [
            r.run_id
            for r in instance.get_runs(filters=RunsFilter(tags={PARENT_RUN_ID_TAG: run_id}))  # type: ignore[attr-defined]
        ]
        for run_id in run_ids
    }


def materialize_args(doc_id: str) -> list[str]:
    """`dagster asset materialize`'s arguments (after `dagster`) for one document's chain."""
    return [
        "asset",
        "materialize",
        "-m",
        "rag_pipeline.definitions",
        "--select",
        "raw_document*",
        "--partition",
        doc_id,
    ]
