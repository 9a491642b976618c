from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from rag_pipeline.assets import ingest_documents
from rag_pipeline.maintenance import backup_job, cleanup_job
from rag_pipeline.partitions import documents
from rag_pipeline.resources import build_resources
from rag_pipeline.schedules import backup_schedule, cleanup_schedule
from rag_pipeline.sensors import landing_zone_sensor

# In process: the model loads once per run and embedding batches span the run's documents.
ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.groups("ingestion"),
    partitions_def=documents,
    executor_def=in_process_executor,
    description="Ingest a range of documents end to end, each with its own outcome.",
)

defs = Definitions(
    assets=[ingest_documents],
    jobs=[ingest_job, backup_job, cleanup_job],
    schedules=[backup_schedule, cleanup_schedule],
    sensors=[landing_zone_sensor],
    resources=build_resources(),
    executor=in_process_executor,
)
