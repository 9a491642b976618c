"""Warm execution: runs execute inside long-lived worker processes that have already imported
Dagster, torch and the project and loaded the model.

The daemon's run launcher (`launcher.WarmRunLauncher`, dagster-celery's `CeleryRunLauncher`
with a heartbeat) puts each run on a Celery queue; `rag-pipeline worker` (`worker.py`) takes it
and executes it in-process, in one of its prefork children. Each run's child beats a heartbeat
(`heartbeat.py`) that run monitoring reads, so a run whose worker died, however it died, is
failed and retried within a minute.
"""
