"""The latency benchmark's pipeline figures: notes uploaded through the API (one at a time, in a
burst, or through the command line) and watched until search finds them, and where each one's
time went, from its run's event log."""

import os
import random
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.harness.processes import BIN
from bench.harness.stack import run_events
from bench.latency.notes import nonsense, note

POLL_SECONDS = 0.2
SOLO_PAUSE_SECONDS = (3.0, 8.0)
TIMEOUT_SECONDS = 300.0  # per solo document, and for the whole burst


@dataclass
class Upload:
    word: str
    posted: float  # time.time() when the POST was sent
    document_id: str = ""
    answered: float | None = None
    searchable: float | None = None

    @property
    def seconds(self) -> float | None:
        return round(self.searchable - self.posted, 3) if self.searchable else None


def _top(http: httpx.Client, word: str, mode: str | None) -> str | None:
    params: dict[str, str | int] = {"q": word, "k": 1, **({"mode": mode} if mode else {})}
    response = http.get("/search", params=params)
    response.raise_for_status()
    results = response.json()["results"]
    return results[0]["document_id"] if results else None


def post(http: httpx.Client, upload: Upload) -> None:
    name, data = note(upload.word)
    response = http.post("/documents", files={"file": (name, data, "text/plain")})
    upload.answered = time.time()
    if response.status_code != 202:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text}")
    upload.document_id = response.json()["documents"][0]["id"]


def watch(
    http: httpx.Client, uploads: list[Upload], all_sent: Callable[[], bool], timeout: float
) -> None:
    """Until every upload (more may be on their way until `all_sent()`) is the top hit for its
    word, or the timeout; a document not found by then keeps `searchable` None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent = all_sent()  # before looking, so an upload sent meanwhile is not missed
        waiting = [u for u in list(uploads) if u.searchable is None]
        if sent and not waiting:
            return
        for upload in waiting:
            if not upload.document_id:
                continue
            if _top(http, upload.word, "lexical") != upload.document_id:
                continue
            if _top(http, upload.word, None) == upload.document_id:
                upload.searchable = time.time()
        time.sleep(POLL_SECONDS)


def solo(http: httpx.Client, count: int, rng: random.Random) -> list[Upload]:
    uploads = []
    for n in range(count):
        time.sleep(rng.uniform(*SOLO_PAUSE_SECONDS))
        upload = Upload(nonsense(rng), time.time())
        post(http, upload)
        uploads.append(upload)
        watch(http, [upload], lambda: True, TIMEOUT_SECONDS)
        print(f"  solo {n + 1}/{count}: {upload.seconds} s", flush=True)
    return uploads


def burst(http: httpx.Client, count: int, within: float, rng: random.Random) -> list[Upload]:
    """`count` uploads evenly over `within` seconds, from a thread, while this one watches."""
    uploads: list[Upload] = []
    words = [nonsense(rng) for _ in range(count)]
    failed: list[BaseException] = []

    def send() -> None:
        started = time.monotonic()
        try:
            with httpx.Client(base_url=str(http.base_url), timeout=60) as own:
                for n, word in enumerate(words):
                    time.sleep(max(0.0, started + n * within / count - time.monotonic()))
                    upload = Upload(word, time.time())
                    uploads.append(upload)  # watched once its id is known
                    post(own, upload)
        except BaseException as exc:
            failed.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    watch(http, uploads, lambda: not sender.is_alive(), TIMEOUT_SECONDS)
    sender.join()
    if failed:
        raise failed[0]
    for n, upload in enumerate(uploads):
        print(f"  burst {n + 1}/{count}: {upload.seconds} s", flush=True)
    return uploads


def by_cli(http: httpx.Client, env: dict[str, str], count: int, rng: random.Random) -> list[float]:
    """Seconds from `rag-pipeline add` to searchable through `dagster asset materialize`."""
    seconds = []
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        for n in range(count):
            word = nonsense(rng)
            name, data = note(word)
            path = Path(tmp) / name
            path.write_bytes(data)
            upload = Upload(word, time.time())
            added = subprocess.run(
                [str(BIN / "rag-pipeline"), "add", str(path)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            upload.document_id = added.stdout.strip()
            command = [
                str(BIN / "dagster"),
                "asset",
                "materialize",
                "-m",
                "rag_pipeline.definitions",
            ]
            subprocess.run(
                [*command, "--select", "raw_document*", "--partition", upload.document_id],
                env=env,
                capture_output=True,
                check=True,
            )
            watch(http, [upload], lambda: True, TIMEOUT_SECONDS)
            if upload.seconds is None:
                raise RuntimeError(f"{upload.document_id} not searchable after the CLI")
            seconds.append(upload.seconds)
            print(f"  cli {n + 1}/{count}: {upload.seconds} s", flush=True)
    return seconds


def breakdown(uploads: list[Upload]) -> list[dict[str, Any]]:
    """Each upload with where its time went, from its run's event log: the sensor (posted to
    run enqueued), the queue, the launch (run starting to the run's process started), setup
    (to the step's start) and the work (step start to searchable)."""
    from dagster import DagsterInstance

    from rag_pipeline.core.storage.data_dir import DocumentStore

    store = DocumentStore(os.environ["RAG_DATA_DIR"])
    rows = []
    with DagsterInstance.get() as instance:
        for upload in uploads:
            doc = store.registry.reads.get(upload.document_id)
            events = run_events(instance, doc.run_id) if doc and doc.run_id else {}
            marks = [
                ("sensor", upload.posted, events.get("RUN_ENQUEUED")),
                ("queue", events.get("RUN_ENQUEUED"), events.get("RUN_STARTING")),
                ("launch", events.get("RUN_STARTING"), events.get("RUN_START")),
                ("setup", events.get("RUN_START"), events.get("STEP_START")),
                ("work", events.get("STEP_START"), upload.searchable),
            ]
            rows.append(
                {
                    **asdict(upload),
                    "seconds": upload.seconds,
                    "run_id": doc.run_id if doc else None,
                    **{
                        f"{name}_seconds": round(end - start, 3) if start and end else None
                        for name, start, end in marks
                    },
                }
            )
    return rows
