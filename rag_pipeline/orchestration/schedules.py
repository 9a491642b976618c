"""The operations schedules (backup, cleanup): cron expressions that change at once.

Each schedule is a sensor that reads its cron expression and time zone on every evaluation, so
a change (`PATCH /schedules/{name}`) applies at the daemon's next loop, within 5 s, with no
reload of the code location; docs/design.md says why not a `ScheduleDefinition`. The expression
comes from the registry once changed there, else from the settings (`RAG_BACKUP_CRON`...).
Whether a schedule runs is its sensor's state in the Dagster instance, the UI's switch.

A tick is due once, at the first evaluation at or after its time: the run key names the tick,
so it never runs twice. Ticks from before the last change (or before the sensor first
evaluated) are not due; a daemon that was down runs the latest tick it missed, once.
Both jobs can run twice without harm.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dagster import (
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from dagster._utils.schedules import cron_string_iterator, is_valid_cron_string

from rag_pipeline.core.registry import Registry
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.jobs import backup_job, cleanup_job
from rag_pipeline.settings import Settings, get_settings

SCHEDULE_TAG = "rag/schedule"
SCHEDULED_FOR_TAG = "rag/scheduled_for"


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule: the job it runs, and where its cron comes from by default."""

    name: str
    job: JobDefinition
    description: str
    default_cron: Callable[[Settings], str]


SCHEDULES = {
    spec.name: spec
    for spec in (
        ScheduleSpec(
            "backup_schedule",
            backup_job,
            "Nightly backup archive under RAG_BACKUP_DIR.",
            lambda settings: settings.backup_cron,
        ),
        ScheduleSpec(
            "cleanup_schedule",
            cleanup_job,
            "Hourly cleanup of the landing zone, orphans and old run history.",
            lambda settings: settings.cleanup_cron,
        ),
    )
}


class InvalidSchedule(ValueError):
    """A cron expression or time zone that cannot be a schedule; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CronSchedule:
    name: str
    cron: str
    timezone: str
    # When it last changed through the API: ticks before this are not due.
    changed_at: float | None = None


def validate(cron: str, timezone: str) -> None:
    """Dagster's own rules: five fields (no seconds) that match some date, and a time zone from
    the tz database."""
    try:
        ZoneInfo(timezone)
    except Exception as exc:
        raise InvalidSchedule(
            "invalid_timezone", f"{timezone!r} is not a time zone (e.g. UTC, Europe/Paris)"
        ) from exc
    try:
        valid = is_valid_cron_string(cron)
        if valid:
            next(cron_string_iterator(time.time(), cron, timezone))
    except Exception:
        valid = False
    if not valid:
        raise InvalidSchedule(
            "invalid_cron",
            f"{cron!r} is not a cron expression that ever runs: five fields, minute hour day "
            "month weekday (e.g. '0 2 * * *')",
        )


def _state_name(name: str) -> str:
    return f"schedule:{name}"


def current(registry: Registry, name: str, settings: Settings) -> CronSchedule:
    """The schedule as it is now: what the registry holds, else the settings."""
    stored: dict[str, Any] = json.loads(registry.get_state(_state_name(name)) or "{}")
    return CronSchedule(
        name=name,
        cron=stored.get("cron") or SCHEDULES[name].default_cron(settings),
        timezone=stored.get("timezone") or settings.schedule_timezone,
        changed_at=stored.get("changed_at"),
    )


def change(
    registry: Registry,
    name: str,
    settings: Settings,
    cron: str | None = None,
    timezone: str | None = None,
) -> CronSchedule:
    """Store a new cron expression and/or time zone (validated together); either way the
    schedule counts as changed now, so no tick from before is due."""
    before = current(registry, name, settings)
    after = CronSchedule(name, cron or before.cron, timezone or before.timezone, time.time())
    validate(after.cron, after.timezone)
    stored: dict[str, Any] = json.loads(registry.get_state(_state_name(name)) or "{}")
    stored.update({k: v for k, v in (("cron", cron), ("timezone", timezone)) if v})
    stored["changed_at"] = after.changed_at
    registry.set_state(_state_name(name), json.dumps(stored))
    return after


def next_tick(schedule: CronSchedule, after: float) -> datetime:
    """The first tick strictly after `after`."""
    ticks = cron_string_iterator(after, schedule.cron, schedule.timezone)
    tick = next(ticks)
    return next(ticks) if tick.timestamp() <= after else tick


def due_tick(schedule: CronSchedule, since: float, now: float) -> datetime | None:
    """The latest tick in (since, now], if any."""
    latest = next(cron_string_iterator(now, schedule.cron, schedule.timezone, ascending=False))
    return latest if since < latest.timestamp() <= now else None


@dataclass(frozen=True)
class Cursor:
    """What the sensor last saw: ticks up to `since` are done; `fired` is the last tick it
    ran; `cron`, `timezone` and `next` are the schedule as this evaluation computed it."""

    since: float
    fired: float | None = None
    cron: str | None = None
    timezone: str | None = None
    next: str | None = None

    @classmethod
    def load(cls, raw: str | None) -> "Cursor | None":
        try:
            return cls(**json.loads(raw)) if raw else None
        except (ValueError, TypeError):
            return None  # unreadable: start afresh, as on a first evaluation

    def dump(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def schedule_tick(
    context: SensorEvaluationContext,
    registry: Registry,
    name: str,
    now: float,
    settings: Settings | None = None,
) -> SensorResult:
    """One evaluation of a schedule's sensor."""
    schedule = current(registry, name, settings or get_settings())
    before = Cursor.load(context.cursor)
    since = max(before.since if before else now, schedule.changed_at or 0.0)
    due = due_tick(schedule, since, now)
    upcoming = next_tick(schedule, now)
    cursor = Cursor(
        since=due.timestamp() if due else since,
        fired=due.timestamp() if due else (before.fired if before else None),
        cron=schedule.cron,
        timezone=schedule.timezone,
        next=upcoming.isoformat(),
    ).dump()
    if due is None:
        return SensorResult(
            skip_reason=f"next run at {upcoming.isoformat()} "
            f"(cron {schedule.cron!r}, {schedule.timezone})",
            cursor=cursor,
        )
    request = RunRequest(
        run_key=f"{name}:{due.isoformat()}",
        tags={SCHEDULE_TAG: name, SCHEDULED_FOR_TAG: due.isoformat(), "rag/cron": schedule.cron},
    )
    return SensorResult(run_requests=[request], cursor=cursor)


def _schedule_sensor(spec: ScheduleSpec, settings: Settings) -> SensorDefinition:
    @sensor(
        name=spec.name,
        job=spec.job,
        # Below the daemon's 5 s loop, so every loop evaluates it.
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"{spec.description} A schedule whose cron expression and time zone live "
        f"in the registry (default {spec.default_cron(settings)!r}) and can change at runtime "
        f"(PATCH /schedules/{spec.name}); each tick says when it runs next.",
    )
    def _evaluate(context: SensorEvaluationContext) -> SensorResult:
        # No resources: a sensor that asks for one makes Dagster open a whole instance (its
        # storages, their schema checks) for every evaluation, 0.3 s of CPU every 5 s for each
        # schedule. The registry is opened once per process and kept.
        registry = DocumentStore(settings.data_dir, settings.registry_url).registry
        return schedule_tick(context, registry, spec.name, time.time(), settings)

    return _evaluate


def build_schedules(settings: Settings) -> list[SensorDefinition]:
    return [_schedule_sensor(spec, settings) for spec in SCHEDULES.values()]


@dataclass(frozen=True)
class ScheduleState:
    """A schedule as the API shows it: its cron, whether it runs, its last and next run."""

    schedule: CronSchedule
    job: str
    running: bool
    last_run_at: datetime | None
    next_run_at: datetime | None


def instigator_running(state: Any, default: bool) -> bool:
    """Whether a sensor runs: its stored state, or its default while nobody has switched it."""
    from dagster._core.scheduler.instigation import InstigatorStatus

    if state is None or state.status == InstigatorStatus.DECLARED_IN_CODE:
        return default
    return bool(state.status == InstigatorStatus.RUNNING)


def schedule_states(
    instance: Any, registry: Registry, settings: Settings, now: float | None = None
) -> dict[str, ScheduleState]:
    now = time.time() if now is None else now
    from dagster._core.definitions.run_request import InstigatorType

    # Not a row left by the ScheduleDefinitions these sensors replaced (same names).
    stored = {
        state.name: state
        for state in instance.all_instigator_state()
        if state.instigator_type == InstigatorType.SENSOR
    }
    found = {}
    for name, spec in SCHEDULES.items():
        schedule = current(registry, name, settings)
        state = stored.get(name)
        running = instigator_running(state, default=True)
        data = getattr(state, "instigator_data", None)
        cursor = Cursor.load(getattr(data, "cursor", None))
        fired = cursor.fired if cursor else None
        found[name] = ScheduleState(
            schedule=schedule,
            job=spec.job.name,
            running=running,
            last_run_at=datetime.fromtimestamp(fired, UTC) if fired else None,
            next_run_at=next_tick(schedule, max(now, schedule.changed_at or 0.0))
            if running
            else None,
        )
    return found
