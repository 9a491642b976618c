"""Schedules for the operations jobs; both run by default and can run twice without harm."""

from collections.abc import Callable
from dataclasses import dataclass

from dagster import DefaultScheduleStatus, JobDefinition, ScheduleDefinition

from rag_pipeline.maintenance import backup_job, cleanup_job
from rag_pipeline.settings import Settings


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


def build_schedules(settings: Settings) -> list[ScheduleDefinition]:
    return [
        ScheduleDefinition(
            name=spec.name,
            job=spec.job,
            cron_schedule=spec.default_cron(settings),
            execution_timezone=settings.schedule_timezone,
            default_status=DefaultScheduleStatus.RUNNING,
            description=spec.description,
        )
        for spec in SCHEDULES.values()
    ]
