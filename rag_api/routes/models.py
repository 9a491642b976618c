"""The embedding models this deployment can use."""

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from rag_api.deps import SettingsDep
from rag_api.schemas import EmbeddingModelOut
from rag_pipeline.core.stages.embedders import available_models

router = APIRouter(tags=["models"])


@router.get("/embedding-models", response_model=list[EmbeddingModelOut])
async def list_embedding_models(settings: SettingsDep) -> list[EmbeddingModelOut]:
    """Every model a collection may name: the bundled ones, registered plugins and the
    OpenAI-compatible endpoints of RAG_EMBEDDING_ENDPOINTS."""
    models = await run_in_threadpool(
        available_models, settings.endpoint_specs(), settings.embedding_model
    )
    return [
        EmbeddingModelOut(
            name=model.model_name,
            dimension=model.dimension,
            max_input_tokens=model.max_tokens,
            multilingual=model.multilingual,
            runs="endpoint" if model.runs == "endpoint" else "in-process",
            default=model.model_name == settings.embedding_model,
        )
        for model in models
    ]
