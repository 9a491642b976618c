"""Schedules: run a schedule's job now."""

from fastapi import APIRouter, Response

from rag_api.deps import AdminOnly, LauncherDep
from rag_api.errors import ApiError
from rag_api.schemas import ErrorResponse, RunStarted
from rag_pipeline.schedules import SCHEDULES, ScheduleSpec

router = APIRouter(prefix="/schedules", tags=["operations"], dependencies=[AdminOnly])


def _spec(name: str) -> ScheduleSpec:
    spec = SCHEDULES.get(name)
    if spec is None:
        known = ", ".join(sorted(SCHEDULES))
        raise ApiError(404, "not_found", f"no schedule named {name!r} (there are: {known})")
    return spec


@router.post(
    "/{name}/run",
    status_code=202,
    response_model=RunStarted,
    responses={code: {"model": ErrorResponse} for code in (401, 404)},
)
def run_schedule(name: str, response: Response, launcher: LauncherDep) -> RunStarted:
    """Run the schedule's job now; follow it at the `Location` it answers with."""
    spec = _spec(name)
    run_id = launcher.launch(spec.job.name, {"rag/source": "api", "rag/schedule": name})
    url = f"/runs/{run_id}"
    response.headers["Location"] = url
    return RunStarted(run_id=run_id, job=spec.job.name, status_url=url)
