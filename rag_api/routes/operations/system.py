"""Health of the stores behind the API."""

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from rag_api.deps import InstanceDep, SettingsDep
from rag_api.schemas import HealthOut
from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect

router = APIRouter(tags=["system"])


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def health(
    request: Request, response: Response, instance: InstanceDep, settings: SettingsDep
) -> HealthOut:
    """Whether the Dagster instance and the vector index answer. Needs no key."""
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(instance.get_runs_count)
        checks["instance"] = "ok"
    except Exception as exc:
        checks["instance"] = f"error: {type(exc).__name__}"
    try:
        index = await run_in_threadpool(
            VectorIndex, connect(settings.chroma_url), settings.chroma_collection
        )
        await run_in_threadpool(index.count)
        checks["index"] = "ok"
    except Exception as exc:
        checks["index"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    response.status_code = 200 if healthy else 503
    return HealthOut(
        status="ok" if healthy else "degraded",
        checks=checks,
        warm=getattr(request.app.state, "warm", False),
    )
