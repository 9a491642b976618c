"""API settings, read from the environment by pydantic-settings (and nowhere else)."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag_pipeline.core.embedding import DEFAULT_MODEL


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # When set, every endpoint but /health and the API description wants a bearer key.
    api_key: str | None = Field(default=None, repr=False)
    max_upload_mb: float = 100.0
    data_dir: Path = Path("data")
    chroma_url: str = "http://127.0.0.1:8001"
    chroma_collection: str = "rag_chunks"
    embedding_model: str = DEFAULT_MODEL
    # How often the progress stream looks at a document's status.
    events_poll_seconds: float = 0.5
    # Idle time after which the progress stream sends a keep-alive comment.
    events_keepalive_seconds: float = 15.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@lru_cache
def get_settings() -> Settings:
    return Settings()
