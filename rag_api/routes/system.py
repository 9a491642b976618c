"""Health of the stores behind the API, and the schedules and sensors that keep it running."""

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool

from rag_api.deps import InstanceDep, SettingsDep, require_key
from rag_api.schemas import ErrorResponse, HealthOut, InstigatorOut
from rag_pipeline.core.index import VectorIndex, connect

router = APIRouter(tags=["system"])


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def health(response: Response, instance: InstanceDep, settings: SettingsDep) -> HealthOut:
    """Whether the Dagster instance and the vector index answer. Needs no key."""
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(instance.get_runs_count)
        checks["instance"] = "ok"
    except Exception as exc:
        checks["instance"] = f"error: {type(exc).__name__}"
    try:
        index = await run_in_threadpool(
            VectorIndex, connect(settings.chroma_url), settings.chroma_collection
        )
        await run_in_threadpool(index.count)
        checks["index"] = "ok"
    except Exception as exc:
        checks["index"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    response.status_code = 200 if healthy else 503
    return HealthOut(status="ok" if healthy else "degraded", checks=checks)


@router.get(
    "/schedules",
    response_model=list[InstigatorOut],
    responses={401: {"model": ErrorResponse}},
    dependencies=[Depends(require_key)],
)
def schedules(instance: InstanceDep) -> list[InstigatorOut]:
    """Every schedule and sensor, with its state and its last and next tick."""
    from dagster import DefaultScheduleStatus, DefaultSensorStatus, ScheduleDefinition

    from rag_pipeline.definitions import defs

    states = {state.name: state for state in instance.all_instigator_state()}
    out = []
    for sensor in defs.sensors or []:
        state = states.get(sensor.name)
        running = _running(state, sensor.default_status == DefaultSensorStatus.RUNNING)
        last = _last_tick(instance, state)
        interval = sensor.minimum_interval_seconds or 30
        out.append(
            InstigatorOut(
                name=sensor.name,
                kind="sensor",
                status="running" if running else "stopped",
                interval_seconds=interval,
                last_tick_at=_iso(last),
                next_tick_at=_iso(max(last + interval, time.time()) if last else None)
                if running
                else None,
            )
        )
    for schedule in defs.schedules or []:
        if not isinstance(schedule, ScheduleDefinition):
            continue
        state = states.get(schedule.name)
        running = _running(state, schedule.default_status == DefaultScheduleStatus.RUNNING)
        cron = str(schedule.cron_schedule)
        out.append(
            InstigatorOut(
                name=schedule.name,
                kind="schedule",
                status="running" if running else "stopped",
                cron=cron,
                timezone=schedule.execution_timezone or "UTC",
                last_tick_at=_iso(_last_tick(instance, state)),
                next_tick_at=_next_cron(cron, schedule.execution_timezone) if running else None,
            )
        )
    return out


def _running(state: Any, default: bool) -> bool:
    from dagster._core.scheduler.instigation import InstigatorStatus

    if state is None or state.status == InstigatorStatus.DECLARED_IN_CODE:
        return default
    return bool(state.status == InstigatorStatus.RUNNING)


def _last_tick(instance: Any, state: Any) -> float | None:
    if state is None:
        return None
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
    return float(ticks[0].timestamp) if ticks else None


def _next_cron(cron: str, timezone: str | None) -> str | None:
    from dagster._utils.schedules import cron_string_iterator

    upcoming = cron_string_iterator(time.time(), cron, timezone or "UTC")
    return next(upcoming).isoformat()
