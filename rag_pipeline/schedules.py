"""Schedules for the operations jobs; both run by default and can run twice without harm."""

import os

from dagster import DefaultScheduleStatus, ScheduleDefinition

from rag_pipeline.maintenance import backup_job, cleanup_job

backup_schedule = ScheduleDefinition(
    name="backup_schedule",
    job=backup_job,
    cron_schedule=os.environ.get("BACKUP_CRON", "0 2 * * *"),
    execution_timezone=os.environ.get("BACKUP_TIMEZONE", "UTC"),
    default_status=DefaultScheduleStatus.RUNNING,
    description="Nightly backup archive under RAG_BACKUP_DIR.",
)

cleanup_schedule = ScheduleDefinition(
    name="cleanup_schedule",
    job=cleanup_job,
    cron_schedule=os.environ.get("CLEANUP_CRON", "0 * * * *"),
    execution_timezone=os.environ.get("BACKUP_TIMEZONE", "UTC"),
    default_status=DefaultScheduleStatus.RUNNING,
    description="Hourly cleanup of the landing zone, orphans and old run history.",
)
