"""rag-ingest-client is its own distribution: httpx and pydantic, never the service."""

import subprocess
import sys
from importlib.metadata import requires

import pytest
from packaging.requirements import Requirement

IMPORT_ALL = """
import sys
import rag_client, rag_client.langchain, rag_client.llama_index
service = {"dagster", "torch", "rag_pipeline", "rag_api", "fastapi"}
print(sorted({m.split(".")[0] for m in sys.modules} & service))
"""


def test_it_depends_on_httpx_and_pydantic_only() -> None:
    needs = [Requirement(r) for r in requires("rag-ingest-client") or []]
    core = sorted(r.name for r in needs if r.marker is None)
    extras = {r.name for r in needs if r.marker is not None}
    assert core == ["httpx", "pydantic"]
    assert extras == {"langchain-core", "llama-index-core"}


@pytest.mark.stack
def test_importing_it_and_its_retrievers_loads_no_service_dagster_or_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
