"""Schedules for the operations jobs; both run by default and can run twice without harm."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from rag_pipeline.maintenance import backup_job, cleanup_job
from rag_pipeline.settings import Settings


def build_schedules(settings: Settings) -> list[ScheduleDefinition]:
    return [
        ScheduleDefinition(
            name="backup_schedule",
            job=backup_job,
            cron_schedule=settings.backup_cron,
            execution_timezone=settings.schedule_timezone,
            default_status=DefaultScheduleStatus.RUNNING,
            description="Nightly backup archive under RAG_BACKUP_DIR.",
        ),
        ScheduleDefinition(
            name="cleanup_schedule",
            job=cleanup_job,
            cron_schedule=settings.cleanup_cron,
            execution_timezone=settings.schedule_timezone,
            default_status=DefaultScheduleStatus.RUNNING,
            description="Hourly cleanup of the landing zone, orphans and old run history.",
        ),
    ]
