"""Every Dagster thing: assets, checks, sensors, schedules, partitions, resources,
jobs, backfills, run requests and the reconciler. Logic lives in rag_pipeline.core."""
