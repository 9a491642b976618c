"""Hostile input at the front door: 0 server errors, nothing outside the landing zone, no crash.

Mislabelled, empty and oversized files, names built to escape the landing zone or confuse a
reader, broken multipart, wrong content types, bad keys, invalid schedule changes, runs,
reprocess and retry requests. Every answer must
be a 4xx in the one error shape, or a 2xx whose files sit inside RAG_DATA_DIR/landing.
"""

import random
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability.harness import (
    API_KEY,
    MAX_UPLOAD_MB,
    TERMINAL,
    Stack,
    all_documents,
    healthy,
    wait_terminal,
)

from bench.harness.results import ran_at

pytestmark = pytest.mark.reliability

TEXT = b"A plain paragraph about reliability, long enough to be a document of its own.\n"
BOUNDARY = "rel-boundary-7d1f"


def multipart(filename: bytes, data: bytes, content_type: bytes = b"text/plain") -> bytes:
    """A multipart body built by hand, so names can hold what httpx would refuse to send."""
    return (
        f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="'
        + filename
        + b'"\r\nContent-Type: '
        + content_type
        + b"\r\n\r\n"
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def snapshot(root: Path) -> set[str]:
    """Every file under root, as relative paths."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _post(client: httpx.Client, body: bytes, content_type: str, **kw: Any) -> httpx.Response:
    return client.post("/documents", content=body, headers={"Content-Type": content_type}, **kw)


def hostile_requests(escape: str) -> list[tuple[str, Any, set[int]]]:
    """(what, a function of the client returning a response, the statuses that are right)."""
    rng = random.Random(6)
    ctype = f"multipart/form-data; boundary={BOUNDARY}"
    limit = MAX_UPLOAD_MB * 1024 * 1024

    def upload(name: bytes, data: bytes = TEXT, part_type: bytes = b"text/plain"):  # type: ignore[no-untyped-def]
        return lambda c: _post(c, multipart(name, data + name, part_type), ctype)

    def sized(size: int):  # type: ignore[no-untyped-def]
        return lambda c: c.post("/documents", files={"file": ("big.txt", b"a" * size)})

    return [
        ("random bytes named .pdf", upload(b"random.pdf", rng.randbytes(64 * 1024)), {415}),
        ("random bytes named .txt", upload(b"noise.txt", rng.randbytes(4096)), {415}),
        ("0-byte file", lambda c: _post(c, multipart(b"empty.pdf", b""), ctype), {422}),
        ("one byte over the limit", sized(limit + 1), {413}),
        ("twice the limit", sized(2 * limit), {413}),
        ("name with ../", upload(f"../../../../{escape}-dots.txt".encode()), {202}),
        ("absolute path", upload(f"/tmp/{escape}-abs.txt".encode()), {202}),
        ("windows path", upload(f"..\\..\\{escape}-win.txt".encode()), {202}),
        ("NUL byte in the name", upload(b"nul\x00name.txt"), {202, 400, 422}),
        ("300-character name", upload(("n" * 296 + ".txt").encode()), {202}),
        ("right-to-left override", upload("invoice\u202etxt.exe.txt".encode()), {202}),
        ("only dots", upload(b".."), {202}),
        ("empty name", upload(b""), {202, 400, 422}),
        ("non-UTF-8 name", upload(b"caf\xe9.txt"), {202, 400, 422}),
        ("image content type, text bytes", upload(b"label.txt", TEXT, b"image/png"), {202}),
        (
            "multipart without the closing boundary",
            lambda c: _post(c, multipart(b"cut.txt", TEXT)[:-20], ctype),
            {400, 422},
        ),
        (
            "multipart without a boundary",
            lambda c: _post(c, b"abc", "multipart/form-data"),
            {400, 422},
        ),
        ("garbage as multipart", lambda c: _post(c, rng.randbytes(2048), ctype), {400, 422}),
        ("JSON body", lambda c: c.post("/documents", json={"file": "x"}), {422}),
        ("text/plain body", lambda c: _post(c, TEXT, "text/plain"), {422}),
        (
            "form-urlencoded body",
            lambda c: _post(c, b"file=abc", "application/x-www-form-urlencoded"),
            {422},
        ),
        (
            "wrong part name",
            lambda c: c.post("/documents", files={"document": ("a.txt", TEXT)}),
            {422},
        ),
        (
            "chunk_size not a number",
            lambda c: c.post(
                "/documents", files={"file": ("a.txt", TEXT)}, data={"chunk_size": "abc"}
            ),
            {422},
        ),
        (
            "chunk_size huge",
            lambda c: c.post(
                "/documents", files={"file": ("a.txt", TEXT)}, data={"chunk_size": str(10**30)}
            ),
            {422},
        ),
        (
            "negative overlap",
            lambda c: c.post(
                "/documents", files={"file": ("a.txt", TEXT)}, data={"chunk_overlap": "-1"}
            ),
            {422},
        ),
        ("id with a NUL", lambda c: c.get("/documents/a%00b"), {404, 422}),
        ("id escaping the path", lambda c: c.get("/documents/..%2F..%2Fetc%2Fpasswd"), {404}),
        ("delete an unknown id", lambda c: c.delete("/documents/" + "x" * 300), {404}),
        ("put without a file", lambda c: c.put("/documents/nope"), {404, 422}),
        ("limit far too large", lambda c: c.get("/documents", params={"limit": 10**12}), {422}),
        ("negative k", lambda c: c.get("/search", params={"q": "x", "k": -1}), {422}),
        ("huge query", lambda c: c.get("/search", params={"q": "word " * 2000}), {200, 422}),
    ]


def operations_requests() -> list[tuple[str, Any, set[int]]]:
    """Schedules, runs, reprocess and retry: refused without changing or starting anything
    (`state` before and after them must be the same)."""

    def patch(body: Any, name: str = "cleanup_schedule"):  # type: ignore[no-untyped-def]
        return lambda c: c.patch(f"/schedules/{name}", json=body)

    def reprocess(body: Any, doc_id: str = "nope-123"):  # type: ignore[no-untyped-def]
        return lambda c: c.post(f"/documents/{doc_id}/reprocess", json=body)

    def retry(body: Any):  # type: ignore[no-untyped-def]
        return lambda c: c.post("/documents/retry", json=body)

    return [
        ("patch an unknown schedule", patch({"running": False}, "nightly"), {404}),
        ("patch a sensor as a schedule", patch({"running": False}, "landing_zone_sensor"), {404}),
        ("cron with seconds", patch({"cron": "* * * * * *"}), {422}),
        ("cron out of range", patch({"cron": "61 * * * *"}), {422}),
        ("a stop with an invalid cron", patch({"running": False, "cron": "61 * * * *"}), {422}),
        ("cron that never runs", patch({"cron": "0 0 31 4 *"}), {422}),
        ("cron of 100 KB", patch({"cron": "*" * 100_000}), {422}),
        ("cron as a number", patch({"cron": 5}), {422}),
        ("time zone as a path", patch({"timezone": "../../../etc/localtime"}), {422}),
        ("time zone with a NUL", patch({"timezone": "UTC\x00"}), {422}),
        ("running as a string", patch({"running": "false"}), {422}),
        ("nothing to change", patch({}), {422}),
        ("unknown field", patch({"paused": True}), {422}),
        (
            "schedule change not JSON",
            lambda c: c.patch(
                "/schedules/cleanup_schedule",
                content=b"running=false",
                headers={"Content-Type": "application/json"},
            ),
            {422},
        ),
        ("run an unknown schedule", lambda c: c.post("/schedules/nightly/run"), {404}),
        (
            "run a schedule escaping the path",
            lambda c: c.post("/schedules/..%2F..%2Fbackup_schedule/run"),
            {404},
        ),
        ("unknown run", lambda c: c.get(f"/runs/{uuid.uuid4()}"), {404}),
        ("run id with a NUL", lambda c: c.get("/runs/a%00b"), {404, 422}),
        ("run id of 300 characters", lambda c: c.get("/runs/" + "r" * 300), {404}),
        ("reprocess an unknown id", reprocess(None), {404}),
        ("reprocess with a huge chunk size", reprocess({"chunk_size": 10**30}), {404, 422}),
        ("reprocess with a negative overlap", reprocess({"chunk_overlap": -1}), {404, 422}),
        ("reprocess with a list", reprocess([1, 2]), {422}),
        ("reprocess an id escaping the path", reprocess(None, "..%2F..%2Fetc"), {404}),
        ("retry another status", retry({"status": "indexed"}), {422}),
        ("retry a huge limit", retry({"limit": 10**12}), {422}),
        ("retry with an unknown filter", retry({"everything": True}), {422}),
        ("retry with a long error code", retry({"error_code": "e" * 1000}), {422}),
        ("retry matching nothing", retry({"error_code": "no_such_code"}), {202}),
        ("retry another collection", retry({"collection": "nobody's"}), {202}),
    ]


AUTH_CASES: list[tuple[str, dict[str, Any]]] = [
    ("no header", {}),
    ("wrong key", {"Authorization": "Bearer not-the-key"}),
    ("basic scheme", {"Authorization": f"Basic {API_KEY}"}),
    ("key without scheme", {"Authorization": API_KEY}),
    ("bearer and nothing", {"Authorization": "Bearer"}),
    ("very long key", {"Authorization": "Bearer " + "k" * 8000}),
    ("non-ASCII key", {"Authorization": "Bearer ключ".encode()}),
    ("key with a prefix of the right one", {"Authorization": f"Bearer {API_KEY[:-1]}"}),
]


AUTH_TARGETS: list[tuple[str, str, Any]] = [
    ("GET", "/documents", None),
    ("PATCH", "/schedules/backup_schedule", {"running": False}),
    ("POST", "/schedules/backup_schedule/run", None),
    ("POST", "/documents/retry", {}),
]


def ask(client: httpx.Client, requests: list[tuple[str, Any, set[int]]]) -> tuple[dict, list]:
    """Send each request; returns (what was answered wrongly, ids of the documents accepted)."""
    wrong: dict[str, str] = {}
    accepted: list[str] = []
    for what, send, statuses in requests:
        response = send(client)
        body = response.json() if "json" in response.headers.get("content-type", "") else {}
        if response.status_code not in statuses:
            wrong[what] = f"{response.status_code} {response.text[:200]}"
        elif response.status_code >= 400 and set(body) != {"error"}:
            wrong[what] = f"error without the one error shape: {response.text[:200]}"
        elif response.status_code == 202:
            # Uploads list documents; a retry that matched nothing lists none.
            accepted.extend(d["id"] for d in body["documents"] if isinstance(d, dict))
    return wrong, accepted


def state(stack: Stack, client: httpx.Client, ours: set[str]) -> dict[str, Any]:
    """What a request could change or start: every document listed (the status of those at
    rest: documents other parts left in flight may still move), ours in full, the collections
    and their live counts, every schedule and sensor, the runs not started by the daemon's own
    schedules and sensors, and where search finds our documents."""

    def get(path: str, **params: Any) -> Any:
        response = client.get(path, params=params)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    listed = all_documents(client)
    with stack.instance() as instance:
        runs = {
            run.run_id
            for run in instance.get_runs()
            if not {"dagster/schedule_name", "dagster/sensor_name"} & set(run.tags)
        }
    hits = get("/search", q=TEXT.decode(), k=100, mode="lexical")["results"]
    return {
        "documents": {
            i: d["status"] if d["status"] in TERMINAL else "in flight" for i, d in listed.items()
        },
        "ours": {i: listed[i] for i in sorted(ours)},
        "collections": {
            c["name"]: (c["documents"], c["chunk_size"], c["chunk_overlap"], c["updated_at"])
            for c in get("/collections")
        },
        "schedules": {
            i["name"]: (i["kind"], i["status"], i["job"], i["cron"], i["timezone"])
            for i in get("/schedules")
        },
        "runs": runs,
        "search": [(h["document_id"], h["chunk_no"]) for h in hits if h["document_id"] in ours],
    }


def changes(was: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """The parts of `state` that differ (a document in flight may come to rest)."""
    if was["documents"].keys() == now["documents"].keys():
        now = {
            **now,
            "documents": {
                i: status if was["documents"][i] != "in flight" else "in flight"
                for i, status in now["documents"].items()
            },
        }
    return {part: (was[part], now[part]) for part in was if was[part] != now[part]}


def test_hostile_requests_get_4xx_and_write_only_into_the_landing_zone(
    stack: Stack, reliability_report: dict[str, Any]
) -> None:
    escape = f"escape-{uuid.uuid4().hex[:8]}"
    before = snapshot(stack.root)
    with stack.client() as client:
        wrong, accepted = ask(client, hostile_requests(escape))
        after_requests = snapshot(stack.root)
        reports, _ = wait_terminal(client, set(accepted), timeout=300)

        # Operations refused, and every request without a right key: none may start, stop or
        # change anything.
        settled = state(stack, client, set(accepted))
        refused, started = ask(client, operations_requests())
        wrong.update(refused)
        for what, headers in AUTH_CASES:
            with httpx.Client(base_url=stack.api_url, timeout=30) as bare:
                for method, path, body in AUTH_TARGETS:
                    response = bare.request(method, path, headers=headers, json=body)
                    error = response.json().get("error") or {}
                    if response.status_code != 401 or error.get("code") != "unauthorized":
                        wrong[f"auth: {what}: {method} {path}"] = (
                            f"{response.status_code} {response.text[:200]}"
                        )
        changed = changes(settled, state(stack, client, set(accepted)))
        after_operations = snapshot(stack.root)

    written = (after_requests | after_operations) - before
    outside = sorted(p for p in written if not p.startswith("data/landing/") and not _ours(p))
    escaped = [
        q for base in (Path("/tmp"), stack.root.parent, stack.root) for q in base.glob(f"{escape}*")
    ]
    names = [reports[i].get("filename") or "" for i in accepted]
    bad_names = [n for n in names if "/" in n or "\\" in n or "\x00" in n or "\u202e" in n]
    reliability_report["hostile_input"] = {
        **ran_at(),
        "requests": len(hostile_requests(escape))
        + len(operations_requests())
        + len(AUTH_CASES) * len(AUTH_TARGETS),
        "unexpected_answers": wrong,
        "files_written_outside_landing": len(outside) + len(escaped),
        "accepted_documents": len(accepted),
        "state_changed_by_refused_requests": sorted(changed),
        "api_alive": stack.alive("api"),
    }
    assert not wrong, wrong
    assert not started, started
    assert accepted and all(reports[i]["status"] == "indexed" for i in accepted), reports
    assert settled["search"], "search finds our documents, so a change would show"
    assert not changed, changed
    assert not outside and not escaped, (outside, escaped)
    assert not bad_names, bad_names
    assert all(healthy(stack).values())


def _ours(relpath: str) -> bool:
    """Files the other processes write on their own: logs, the instance, Chroma's data, and the
    pipeline's stores under RAG_DATA_DIR once the sensor takes an upload."""
    top = relpath.split("/")[0]
    return (
        top in ("home", "chroma")
        or relpath.endswith(".log")
        or (
            top == "data"
            and (
                relpath.split("/")[1] in ("sources", "raw", "catalog", "incoming", "terms")
                # The document registry, created by the first upload when this part runs alone.
                or relpath.split("/")[1].startswith("registry.")
            )
        )
    )
