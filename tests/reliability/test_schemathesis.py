"""Schemathesis against the OpenAPI schema, as each role: no request it makes or chains (its
coverage, fuzzing and stateful phases) gets a server error, and the API stays up."""

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability.harness import API_KEY, FULL, Stack
from support.env import BIN

from bench.harness.results import ran_at

pytestmark = pytest.mark.reliability


def _key_for(stack: Stack, role: str) -> str:
    """RAG_API_KEY for the admin; a key of this role over `default` otherwise."""
    if role == "admin":
        return API_KEY
    made = httpx.post(
        f"{stack.api_url}/keys",
        json={"name": f"schemathesis-{role}", "role": role, "collections": ["default"]},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    )
    made.raise_for_status()
    return str(made.json()["secret"])


@pytest.mark.parametrize("role", ["admin", "writer", "reader"])
def test_schemathesis_finds_no_server_error(
    stack: Stack, reliability_report: dict[str, Any], tmp_path: Path, role: str
) -> None:
    out = tmp_path / "schemathesis.json"
    examples = "100" if FULL else "5"
    result = subprocess.run(
        [
            str(BIN / "schemathesis"),
            # Statuses that are answers, not errors, for some operations (fetches by URL).
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{stack.api_url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            examples,
            "--header",
            f"Authorization: Bearer {_key_for(stack, role)}",
            "--request-timeout",
            "60",
            "--generation-deterministic",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # schemathesis keeps its example database in the working directory
        timeout=1200 if FULL else 300,
    )
    summary = summarise(out)
    reliability_report["schemathesis" if role == "admin" else f"schemathesis_{role}"] = {
        **ran_at(),
        **summary,
        "exit_code": result.returncode,
    }
    assert stack.alive("api")
    assert summary["failures"] == 0 and result.returncode == 0, result.stdout[-4000:]
    assert summary["cases"] > 0


def summarise(ndjson: Path) -> dict[str, Any]:
    operations: set[str] = set()
    cases = failures = 0
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        for kind, payload in event.items():
            if kind == "ScenarioFinished":
                recorder = payload.get("recorder", {})
                label = recorder.get("label")
                if label:
                    operations.add(label)
                cases += len(recorder.get("cases", {}))
                for checks in recorder.get("checks", {}).values():
                    failures += sum(1 for c in checks if str(c.get("status")).lower() == "failure")
    return {"operations": len(operations), "cases": cases, "failures": failures}
