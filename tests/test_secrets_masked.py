"""Settings printouts never carry secrets: `python -m rag_pipeline.settings` masks secret
settings and the passwords in URLs, and shows everything else as it is."""

import json
import os
import subprocess

import pytest
from support.env import BIN

SECRETS = {
    "RAG_REGISTRY_URL": "postgresql+psycopg2://rag:pg-s3cret@db.internal:5432/rag",
    "RAG_BROKER_URL": "redis://:redis-s3cret@cache:6379/0",
    "RAG_RESULT_BACKEND": "db+postgresql://rag:backend-s3cret@db/rag?sslpassword=ssl-s3cret",
    "RAG_API_KEY": "root-s3cret",
    "RAG_CHROMA_URL": "http://127.0.0.1:8123",
}


@pytest.mark.stack
def test_the_settings_printout_masks_every_secret() -> None:
    shown = subprocess.run(
        [str(BIN / "python"), "-m", "rag_pipeline.settings"],
        env={**os.environ, **SECRETS},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "s3cret" not in shown
    settings = json.loads(shown)
    assert settings["registry_url"] == "postgresql+psycopg2://rag:***@db.internal:5432/rag"
    assert settings["broker_url"] == "redis://:***@cache:6379/0"
    assert settings["result_backend"] == "db+postgresql://rag:***@db/rag?sslpassword=***"
    assert settings["api_key"] == "***"
    # What is no secret stays readable.
    assert settings["chroma_url"] == "http://127.0.0.1:8123"
