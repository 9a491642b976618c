"""Nothing a file contains stalls the API: sniffing an upload is linear, and bounded in time.

The first test serves the real app with uvicorn, as users reach it, because a stall of the
process (a scan holding the GIL) shows only there: TestClient would wait on it too.
"""

import os
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from support.api import assert_error, assert_nothing_kept, land_rejected
from support.env import running_api

from rag_api.main import create_app
from rag_pipeline.core.stages.extract.admission import IN_PROCESS_BYTES
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.settings import get_settings

pytest_plugins = ["support.api"]

API_KEY = "sniff-bound-admin-key"
# What froze the API before sniffing was linear: the comment-skipping pattern backtracked
# exponentially, ~5 s here for these 183 bytes, doubling with each `<!---->` more.
REDOS = b"<!---->" * 26 + b"x"


@pytest.mark.slow
def test_health_answers_within_a_second_while_hostile_files_are_uploaded(
    rag_env: dict[str, str], instance: object, tmp_path: Path
) -> None:
    latencies: list[float] = []
    uploading = threading.Event()
    done = threading.Event()

    def poll(url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as poller:
            while not done.is_set():
                started = time.monotonic()
                try:
                    healthy = poller.get("/health").status_code == 200
                except httpx.TimeoutException:
                    healthy = False
                if uploading.is_set():
                    latencies.append(time.monotonic() - started if healthy else float("inf"))
                time.sleep(0.02)

    with running_api({**os.environ}, tmp_path / "api.log", API_KEY) as url:
        # Start-up work (the model, the sandbox's fork server) is not what this measures.
        deadline = time.monotonic() + 120
        while not httpx.get(f"{url}/health").json()["warm"]:
            assert time.monotonic() < deadline, "the API did not finish warming up"
            time.sleep(0.1)
        poller = threading.Thread(target=poll, args=(url,), daemon=True)
        poller.start()
        headers = {"Authorization": f"Bearer {API_KEY}"}
        statuses = []
        with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
            uploading.set()
            # Small ones sniffed in-process, and one over IN_PROCESS_BYTES sniffed in the
            # sandbox; then on until the poller has seen the API during the uploads.
            hostile = [REDOS + str(n).encode() for n in range(10)]
            hostile.append(b"<!---->" * (IN_PROCESS_BYTES // 7 + 1) + b"x")
            for n, data in enumerate(hostile):
                files = {"file": (f"comments-{n}.txt", data)}
                statuses.append(client.post("/documents", files=files).status_code)
            while len(latencies) < 20 and poller.is_alive():
                statuses.append(
                    client.post("/documents", files={"file": ("again.txt", REDOS)}).status_code
                )
            uploading.clear()
        done.set()
        poller.join(timeout=30)

    assert len(latencies) >= 20, latencies
    print(f"/health during uploads: {len(latencies)} polls, max {max(latencies) * 1000:.0f} ms")
    assert max(latencies) < 1.0, f"/health took up to {max(latencies):.2f} s during uploads"
    assert set(statuses) <= {200, 202} and 202 in statuses, statuses


# Over IN_PROCESS_BYTES, so sniffed in the sandbox child; a bound far below the child's own
# start-up cost stops every such sniff.
ORDINARY = b"A line of a perfectly ordinary text file.\n" * (IN_PROCESS_BYTES // 40)
TOO_SHORT = "0.001"


def test_a_file_not_sniffed_in_time_is_refused_with_its_code(settings, instance) -> None:
    data = ORDINARY
    assert len(data) > IN_PROCESS_BYTES
    bounded = settings.model_copy(update={"sniff_timeout_seconds": float(TOO_SHORT)})
    with TestClient(create_app(bounded, instance)) as client:
        refused = client.post("/documents", files={"file": ("notes.txt", data)})
    body = assert_error(refused, 422, "sniff_timeout")
    assert "notes.txt" in body["error"]["message"]
    assert_nothing_kept(settings)

    with TestClient(create_app(settings, instance)) as client:
        accepted = client.post("/documents", files={"file": ("notes.txt", data)})
    assert accepted.status_code == 202, accepted.text


def test_a_landing_file_not_sniffed_in_time_is_rejected_with_its_code(
    rag_env: dict[str, str], instance: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = Path(rag_env["RAG_DATA_DIR"])
    monkeypatch.setenv("RAG_SNIFF_TIMEOUT_SECONDS", TOO_SHORT)
    get_settings.cache_clear()  # the sensor reads the settings once per process
    try:
        rejected = land_rejected(instance, data_dir, "notes.txt", ORDINARY)
    finally:
        get_settings.cache_clear()
    doc = DocumentStore(data_dir).registry.reads.get(rejected["id"])
    assert doc is not None and doc.error_code == "sniff_timeout", doc
