from dagster import Definitions, in_process_executor

from rag_pipeline.assets import ingest_documents, ingest_job
from rag_pipeline.maintenance import backup_job, cleanup_job
from rag_pipeline.resources import build_resources
from rag_pipeline.schedules import backup_schedule, cleanup_schedule
from rag_pipeline.sensors import landing_zone_sensor

defs = Definitions(
    assets=[ingest_documents],
    jobs=[ingest_job, backup_job, cleanup_job],
    schedules=[backup_schedule, cleanup_schedule],
    sensors=[landing_zone_sensor],
    resources=build_resources(),
    executor=in_process_executor,
)
