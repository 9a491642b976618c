"""Schedules and sensors: their state and next tick, changed at once, and run now.

The two schedules (backup, cleanup) are sensors that read their cron expression on every
daemon loop (rag_pipeline/orchestration/schedules.py), so a change applies within seconds.
"""

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Response

from rag_api.deps import AdminOnly, InstanceDep, SettingsDep, StoreDep, SubmitterDep, require_key
from rag_api.errors import ApiError
from rag_api.schemas import ErrorResponse, InstigatorOut, RunStarted, ScheduleChange
from rag_pipeline.orchestration import schedules
from rag_pipeline.orchestration.schedules import SCHEDULES, ScheduleSpec, ScheduleState

router = APIRouter(prefix="/schedules", tags=["operations"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 404, 422)
}


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def _spec(name: str) -> ScheduleSpec:
    spec = SCHEDULES.get(name)
    if spec is None:
        known = ", ".join(sorted(SCHEDULES))
        raise ApiError(404, "not_found", f"no schedule named {name!r} (there are: {known})")
    return spec


def _schedule_out(name: str, state: ScheduleState) -> InstigatorOut:
    return InstigatorOut(
        name=name,
        kind="schedule",
        status="running" if state.running else "stopped",
        job=state.job,
        cron=state.schedule.cron,
        timezone=state.schedule.timezone,
        last_tick_at=state.last_run_at.isoformat() if state.last_run_at else None,
        next_tick_at=state.next_run_at.isoformat() if state.next_run_at else None,
    )


@router.get(
    "",
    response_model=list[InstigatorOut],
    responses={401: {"model": ErrorResponse}},
    dependencies=[Depends(require_key)],
)
def list_schedules(
    instance: InstanceDep, store: StoreDep, settings: SettingsDep
) -> list[InstigatorOut]:
    """Every schedule and sensor, with its state; a schedule's last run and next tick."""
    from rag_pipeline.definitions import defs

    states = {state.name: state for state in instance.all_instigator_state()}
    out = []
    for sensor in defs.sensors or []:
        if sensor.name in SCHEDULES:
            continue
        state = states.get(sensor.name)
        default = sensor.default_status.value == "RUNNING"
        running = schedules.instigator_running(state, default)
        last = _last_tick(instance, state)
        interval = sensor.minimum_interval_seconds or 30
        out.append(
            InstigatorOut(
                name=sensor.name,
                kind="sensor",
                status="running" if running else "stopped",
                job=sensor.job_name if sensor.has_jobs else None,
                interval_seconds=interval,
                last_tick_at=_iso(last),
                next_tick_at=_iso(max(last + interval, time.time()) if last else None)
                if running
                else None,
            )
        )
    found = schedules.schedule_states(instance, store.registry, settings)
    out.extend(_schedule_out(name, state) for name, state in found.items())
    return out


def _last_tick(instance: Any, state: Any) -> float | None:
    if state is None:
        return None
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
    return float(ticks[0].timestamp) if ticks else None


@router.patch("/{name}", response_model=InstigatorOut, responses=_ERRORS, dependencies=[AdminOnly])
def change_schedule(
    name: str,
    change: ScheduleChange,
    instance: InstanceDep,
    store: StoreDep,
    settings: SettingsDep,
    submitter: SubmitterDep,
) -> InstigatorOut:
    """Start or stop a schedule, or change its cron expression or time zone.

    The daemon's next loop (within 5 s) follows the change; it lives in the registry (the cron)
    and the Dagster instance (running or not), so it survives restarts. Ticks from before the
    change are not run.
    """
    spec = _spec(name)
    if change.running is None and not change.cron and not change.timezone:
        raise ApiError(422, "invalid_request", "nothing to change: give running, cron or timezone")
    schedules.change(store.registry, spec.name, settings, change.cron, change.timezone)
    if change.running is not None:
        submitter.set_running(spec.name, change.running)
    state = schedules.schedule_states(instance, store.registry, settings)[spec.name]
    return _schedule_out(spec.name, state)


@router.post(
    "/{name}/run",
    status_code=202,
    response_model=RunStarted,
    responses={code: {"model": ErrorResponse} for code in (401, 404)},
    dependencies=[AdminOnly],
)
def run_schedule(name: str, response: Response, submitter: SubmitterDep) -> RunStarted:
    """Run the schedule's job now; follow it at the `Location` it answers with."""
    spec = _spec(name)
    run_id = submitter.launch(spec.job.name, {"rag/source": "api", schedules.SCHEDULE_TAG: name})
    url = f"/runs/{run_id}"
    response.headers["Location"] = url
    return RunStarted(run_id=run_id, job=spec.job.name, status_url=url)
