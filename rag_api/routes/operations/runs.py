"""Runs: what a run asked for through the API (or any other run) is doing, and what it did."""

from fastapi import APIRouter

from rag_api.deps import AdminOnly, InstanceDep
from rag_api.errors import ApiError
from rag_api.schemas import ErrorResponse, RunOut
from rag_pipeline.orchestration.runs.run_requests import run_report

router = APIRouter(prefix="/runs", tags=["operations"], dependencies=[AdminOnly])


@router.get(
    "/{run_id}",
    response_model=RunOut,
    responses={code: {"model": ErrorResponse} for code in (401, 404)},
)
def get_run(run_id: str, instance: InstanceDep) -> RunOut:
    """A run's job, status, start and end, failure message, and the job's own result."""
    found = run_report(instance, run_id)
    if found is None:
        raise ApiError(404, "not_found", f"no run with id {run_id!r}")
    return RunOut.model_validate(found, from_attributes=True)
