"""The schedules' sensors, one evaluation at a time (the daemon's part is in
tests/orchestration/maintenance/test_operations_daemon.py)."""

from datetime import UTC, datetime

from dagster import build_sensor_context

from rag_pipeline.orchestration import schedules
from rag_pipeline.orchestration.schedules import Cursor, schedule_tick
from rag_pipeline.settings import Settings

# 2026-03-10 14:30:20 UTC, a Tuesday.
NOW = datetime(2026, 3, 10, 14, 30, 20, tzinfo=UTC).timestamp()


def _tick(instance, store, cursor: str | None, now: float):  # type: ignore[no-untyped-def]
    context = build_sensor_context(instance=instance, cursor=cursor)
    return schedule_tick(context, store.registry, "cleanup_schedule", now, Settings())


def test_a_first_evaluation_runs_nothing_and_says_when_it_will(instance, store) -> None:
    result = _tick(instance, store, None, NOW)
    assert not result.run_requests
    # The settings' default: hourly, at minute 0.
    assert "next run at 2026-03-10T15:00:00+00:00" in result.skip_reason.skip_message  # type: ignore[union-attr]
    cursor = Cursor.load(result.cursor)
    assert cursor is not None and cursor.since == NOW and cursor.fired is None


def test_a_due_tick_runs_once_and_a_missed_one_only_the_latest(instance, store) -> None:
    two_hours_before = Cursor(since=NOW - 7200).dump()
    result = _tick(instance, store, two_hours_before, NOW)
    # 13:00 and 14:00 were missed (a daemon that was down): only 14:00 runs.
    [request] = result.run_requests or []
    assert request.tags[schedules.SCHEDULED_FOR_TAG] == "2026-03-10T14:00:00+00:00"
    assert request.run_key == "cleanup_schedule:2026-03-10T14:00:00+00:00"
    # The cursor it leaves makes the next evaluation run nothing.
    again = _tick(instance, store, result.cursor, NOW + 5)
    assert not again.run_requests
    assert Cursor.load(again.cursor).fired == datetime(2026, 3, 10, 14, tzinfo=UTC).timestamp()


def test_a_change_applies_at_the_next_evaluation_and_never_runs_the_past(
    instance, store, monkeypatch
) -> None:
    settings = Settings()
    earlier = _tick(instance, store, None, NOW)
    monkeypatch.setattr(schedules.time, "time", lambda: NOW + 1)
    changed = schedules.change(
        store.registry, "cleanup_schedule", settings, cron="*/5 * * * *", timezone="Asia/Tokyo"
    )
    assert (changed.cron, changed.timezone, changed.changed_at) == (
        "*/5 * * * *",
        "Asia/Tokyo",
        NOW + 1,
    )
    # 14:30 matches the new cron, but came before the change: not due.
    after = _tick(instance, store, Cursor(since=NOW - 7200).dump(), NOW + 2)
    assert not after.run_requests
    cursor = Cursor.load(after.cursor)
    assert (cursor.cron, cursor.timezone) == ("*/5 * * * *", "Asia/Tokyo")
    assert cursor.next == "2026-03-10T23:35:00+09:00"
    # At 14:35 it runs.
    due = _tick(instance, store, after.cursor, NOW + 280)
    [request] = due.run_requests or []
    assert request.tags[schedules.SCHEDULED_FOR_TAG] == "2026-03-10T23:35:00+09:00"
    # A time-zone-only change keeps the cron; the other schedule is untouched.
    schedules.change(store.registry, "cleanup_schedule", settings, timezone="UTC")
    assert schedules.current(store.registry, "cleanup_schedule", settings).cron == "*/5 * * * *"
    backup = schedules.current(store.registry, "backup_schedule", settings)
    assert (backup.cron, backup.changed_at) == (settings.backup_cron, None)
    assert earlier.cursor != after.cursor


def test_an_unreadable_cursor_starts_afresh(instance, store) -> None:
    result = _tick(instance, store, "not json", NOW)
    assert not result.run_requests and Cursor.load(result.cursor).since == NOW
