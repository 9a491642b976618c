"""Latency benchmark: one small document through the API until it is searchable.

A stack on a temporary instance and free ports (bench/harness/stack.py): Chroma,
`rag-pipeline worker`, `dagster-daemon` and `rag-api`, with the real model; measuring starts once
every worker process is warm. Each document is a small text (two short paragraphs) carrying a
nonsense word of its own, and it is searchable when `GET /search?q=<word>&k=1` (the default,
hybrid mode) returns it as the top hit; its latency runs from the moment its `POST /documents`
was sent.

- solo: uploads one at a time, each once the one before is searchable and a pause of 3-8 s
  later (random, so uploads fall at every phase of the sensor daemon's 5 s loop); p50 and p95.
  Goals: p50 <= 5 s, p95 <= 8 s.
- burst: 10 uploads spread evenly over 2 s while the searches watch. Goal: all <= 10 s.

The floor, in the same run: the same kind of document extracted, chunked, embedded, upserted
into a Chroma collection on the same server and found by a search (the word's embedding,
filtered to chunks containing it) in this one warm process, with no Dagster: one at a time for
the solo figure, the burst's ten together for the burst. Ratios are floor / pipeline.

Searches are polled cheaply: a lexical query (no model) every 0.2 s per waiting document, and
the real hybrid query once the lexical one finds it; the document becomes searchable in both
at the same moment (its vectors are written before its terms are published).

- cli (entry point 4): `rag-pipeline add` and `dagster asset materialize --partition` for a
  note, from the first command to searchable; first with the warm worker alive (the command
  hands its step to it), then with the worker stopped (the command loads the model itself),
  p50 of `--cli` each. Same floor as solo.

`--launcher default` measures the execution model before warm workers: Dagster's
DefaultRunLauncher spawns a process per run, and no worker runs. Each launcher's figures are
kept under its own key in bench/results/latency.json, and latency.png draws every launcher
measured.

    python -m bench latency [--solo 10] [--burst 10] [--cli 3] [--launcher warm|default]
"""

import os
import random
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.harness.command import arguments
from bench.harness.processes import BIN, stop_on_sigterm
from bench.harness.results import provenance, read_json, write_json
from bench.harness.stack import LAUNCHERS, MODEL, Stack, run_events
from bench.latency.summary import print_table, summarise, summarise_cli, write_chart
from rag_pipeline.execution.executor import WORKER_SEEN_WITHIN_SECONDS

POLL_SECONDS = 0.2
SOLO_PAUSE_SECONDS = (3.0, 8.0)
TIMEOUT_SECONDS = 300.0  # per solo document, and for the whole burst
FLOOR_REPEATS = 5
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
PARAGRAPHS = (
    "The {word} survey counted the lighthouses along the northern coast and noted which of "
    "them still burn oil. Most keepers have left, and the lamps are tended from the mainland.",
    "Visitors who ask about the {word} method are shown how a wick is trimmed so the flame "
    "stays low and steady through a winter storm, and why the glass is cleaned at dawn.",
)


def nonsense(rng: random.Random) -> str:
    """A word no corpus holds: five random syllables."""
    return "".join(rng.choice(SYLLABLES) for _ in range(5))


def note(word: str) -> tuple[str, bytes]:
    return f"note-{word}.txt", "\n\n".join(p.format(word=word) for p in PARAGRAPHS).encode()


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


def floor(chroma_url: str, rng: random.Random, burst: int) -> dict[str, Any]:
    """Seconds from bytes to found, in one warm plain process: one note at a time, and a
    burst of them together (each extracted and chunked, one embedding call, then upserts
    and searches)."""
    from rag_pipeline.core.retrieval.vector_index import connect
    from rag_pipeline.core.stages.chunking import chunk_pages, load_tokenizer
    from rag_pipeline.core.stages.embedders import get_embedder
    from rag_pipeline.core.stages.extract import extract

    embedder = get_embedder(MODEL)
    # A few short texts at a time: one thread is fastest, and on a busy machine two contend
    # (the API embeds its queries on one thread for the same reason, see rag_api/deps.py).
    embedder.use_threads(1)
    embedder.embed_documents(["warm up"])
    tokenizer = load_tokenizer(embedder.tokenizer_path)
    client = connect(chroma_url)
    collection = client.get_or_create_collection(
        f"bench-floor-{uuid.uuid4().hex[:8]}",
        configuration={"hnsw": {"space": "cosine"}},
        embedding_function=None,
    )

    def chunks_of(word: str) -> list[str]:
        name, data = note(word)
        extracted = extract(data, name)
        pages = [(p.number, p.text) for p in extracted.pages]
        chunks = chunk_pages(name, pages, tokenizer, max_tokens=embedder.max_tokens)
        return [c.text for c in chunks]

    def found(word: str) -> bool:
        query = np.asarray([embedder.embed_query(word)], dtype=np.float32)
        hits = collection.query(
            query_embeddings=query, n_results=1, where_document={"$contains": word}
        )
        return bool(hits["ids"][0]) and hits["ids"][0][0].startswith(f"{word}:")

    def upsert(word: str, texts: list[str], vectors: Any) -> None:
        collection.upsert(
            ids=[f"{word}:{n}" for n in range(len(texts))],
            embeddings=np.asarray(vectors, dtype=np.float32),
            documents=texts,
        )

    found(nonsense(rng))  # the first query of a collection pays for opening it
    solo = []
    for _ in range(FLOOR_REPEATS):
        word = nonsense(rng)
        started = time.perf_counter()
        texts = chunks_of(word)
        upsert(word, texts, embedder.embed_documents(texts))
        if not found(word):
            raise RuntimeError(f"the floor did not find {word}")
        solo.append(time.perf_counter() - started)
    bursts = []
    for _ in range(FLOOR_REPEATS):
        words = [nonsense(rng) for _ in range(burst)]
        started = time.perf_counter()
        per_word = [chunks_of(word) for word in words]
        vectors = embedder.embed_documents([t for texts in per_word for t in texts])
        at = 0
        for word, texts in zip(words, per_word, strict=True):
            upsert(word, texts, vectors[at : at + len(texts)])
            at += len(texts)
        if not all(found(word) for word in words):
            raise RuntimeError("the floor did not find every burst document")
        bursts.append(time.perf_counter() - started)
    client.delete_collection(collection.name)
    return {
        "solo_seconds": [round(s, 4) for s in solo],
        "solo_p50_seconds": round(statistics.median(solo), 4),
        # Medians of FLOOR_REPEATS: the machine is shared, and one slow repeat is not the floor.
        "burst_seconds": round(statistics.median(bursts), 4),
    }


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


def main(argv: list[str] | None = None) -> None:
    parser = arguments("latency", __doc__)
    parser.add_argument("--solo", type=int, default=10, help="solo uploads")
    parser.add_argument("--burst", type=int, default=10, help="uploads in the burst")
    parser.add_argument("--burst-seconds", type=float, default=2.0, help="the burst's spread")
    parser.add_argument("--cli", type=int, default=3, help="notes through the CLI, each way")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="warm")
    parser.add_argument("--seed", type=int, default=None, help="for the nonsense words")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    rng = random.Random(args.seed)
    measured = provenance()

    with (
        tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp,
        Stack(Path(tmp), launcher=args.launcher) as stack,
    ):
        stack.start("chroma")
        os.environ.update(stack.env)
        print("floor: one warm process, no Dagster ...", flush=True)
        base = floor(stack.chroma_url, rng, args.burst)
        what = "rag-pipeline worker, " if args.launcher == "warm" else ""
        print(f"pipeline: starting {what}dagster-daemon and rag-api ...", flush=True)
        stack.start_all()
        with httpx.Client(base_url=stack.api_url, timeout=60) as http:
            print(f"pipeline: {args.solo} solo uploads", flush=True)
            solos = solo(http, args.solo, rng)
            time.sleep(SOLO_PAUSE_SECONDS[1])
            print(f"pipeline: a burst of {args.burst} in {args.burst_seconds} s", flush=True)
            bursts = burst(http, args.burst, args.burst_seconds, rng)
            # Before the CLI part stops the worker, whose CPU the report counts.
            report = summarise(measured, base, breakdown(solos), breakdown(bursts), stack)
            cli: dict[str, list[float]] = {}
            if args.cli and args.launcher == "warm":
                print(f"pipeline: {args.cli} through the CLI, warm worker alive", flush=True)
                cli["warm_worker"] = by_cli(http, stack.env, args.cli, rng)
                stack.stop("worker")
                time.sleep(WORKER_SEEN_WITHIN_SECONDS + 1)
                print(f"pipeline: {args.cli} through the CLI, no worker", flush=True)
                cli["in_process"] = by_cli(http, stack.env, args.cli, rng)
        if cli:
            report["cli"] = summarise_cli(cli, base)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["settings"] = {"solo": args.solo, "burst": args.burst, "within": args.burst_seconds}
    print_table(report)
    # Each launcher's figures are kept when the other is measured.
    results = {**read_json("latency"), args.launcher: report}
    print(f"written to {write_json('latency', results)} and {write_chart(results)}")
