"""Load: uploads from concurrent clients while ingestion runs, with duplicates, new versions
and deletes mixed in, over two collections each with its own writer key. At the end no
document is lost, no vector is duplicated, Chroma holds exactly the catalog's chunks of the
live documents, every status matches the stores, and neither key sees the other collection's
documents.
"""

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from reliability.audit import Scope, audit
from reliability.harness import (
    FULL,
    Stack,
    healthy,
    request,
    synthetic_text,
    wait_terminal,
)

from bench.harness.results import ran_at

pytestmark = pytest.mark.reliability

UPLOADS, CLIENTS = (500, 16) if FULL else (40, 4)
MIX = {"new": 0.7, "duplicate": 0.1, "version": 0.1, "delete": 0.1}
# Two tenants, each a collection with a writer key of its own (made by `tenants`).
TENANTS = ("load-a", "load-b")


class Ledger:
    """What every acknowledged request promised: the id's final status."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.expected: dict[str, str] = {}
        # (name, bytes, id, tenant) and (id, name, tenant)
        self.keepers: list[tuple[str, bytes, str, str]] = []
        self.retirable: list[tuple[str, str, str]] = []
        self.owner: dict[str, str] = {}
        self.keys: dict[str, dict[str, str]] = {}
        self.answers: Counter[str] = Counter()
        self.broken: list[str] = []
        self.latencies: dict[str, list[float]] = {}


def run_op(client: Any, ledger: Ledger, n: int, kind: str, rng: random.Random) -> None:
    with ledger.lock:
        if kind == "duplicate" and not ledger.keepers:
            kind = "new"
        if kind in ("version", "delete") and not ledger.retirable:
            kind = "new"
        target = (
            ledger.retirable.pop(rng.randrange(len(ledger.retirable)))
            if kind in ("version", "delete")
            else None
        )
        keeper = rng.choice(ledger.keepers) if kind == "duplicate" else None
    # A new document goes to tenant n % 2; any other request acts on its target's tenant.
    tenant = TENANTS[n % 2]
    if keeper is not None:
        tenant = keeper[3]
    elif target is not None:
        tenant = target[2]
    upload_url = f"/collections/{tenant}/documents"
    auth = ledger.keys[tenant]
    started = time.monotonic()
    if kind == "new":
        name, data = f"load-{n:04d}.txt", synthetic_text(n)
        response = request(client, "POST", upload_url, files={"file": (name, data)}, headers=auth)
    elif kind == "duplicate" and keeper is not None:
        # Half under the same name, half under another: identical bytes are one document.
        name = keeper[0] if n % 2 else f"load-copy-{n:04d}-{keeper[0]}"
        response = request(
            client, "POST", upload_url, files={"file": (name, keeper[1])}, headers=auth
        )
    elif kind == "version" and target is not None:
        name, data = target[1], synthetic_text(n, version=2)
        response = request(
            client,
            "PUT",
            f"/documents/{target[0]}",
            files={"file": (name, data)},
            headers=auth,
        )
    else:
        assert target is not None
        response = request(client, "DELETE", f"/documents/{target[0]}", headers=auth)
    elapsed = time.monotonic() - started
    with ledger.lock:
        ledger.latencies.setdefault(kind, []).append(elapsed)
        ledger.answers[f"{kind} {response.status_code}"] += 1
        if response.status_code >= 500:
            ledger.broken.append(f"{kind}: {response.status_code} {response.text[:200]}")
            return
        if kind == "new" and response.status_code == 202:
            doc_id = response.json()["documents"][0]["id"]
            ledger.expected[doc_id] = "indexed"
            ledger.owner[doc_id] = tenant
            (
                ledger.keepers.append((name, data, doc_id, tenant))
                if n % 4 in (0, 1)
                else ledger.retirable.append((doc_id, name, tenant))
            )
        elif kind == "duplicate" and keeper is not None:
            doc = response.json()["documents"][0]
            if response.status_code != 200 or not doc["duplicate"] or doc["id"] != keeper[2]:
                ledger.broken.append(
                    f"duplicate of {keeper[2]} answered {response.status_code} {doc}"
                )
                ledger.expected.setdefault(doc["id"], "indexed")
        elif kind == "version" and target is not None and response.status_code == 202:
            ledger.expected[target[0]] = "deleted"
            new_id = response.json()["documents"][0]["id"]
            ledger.expected[new_id] = "indexed"
            ledger.owner[new_id] = tenant
        elif kind == "delete" and target is not None and response.status_code == 204:
            ledger.expected[target[0]] = "deleted"
        else:
            ledger.broken.append(f"{kind}: {response.status_code} {response.text[:200]}")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def tenants(client: Any) -> dict[str, dict[str, str]]:
    """Each tenant's collection (made afresh) and writer key, as request headers."""
    keys = {}
    for name in TENANTS:
        request(client, "DELETE", f"/collections/{name}")  # left by an earlier part, if any
        made = request(client, "POST", "/collections", json={"name": name})
        assert made.status_code == 201, made.text
        key = request(
            client,
            "POST",
            "/keys",
            json={"name": f"{name}-writer", "role": "writer", "collections": [name]},
        )
        assert key.status_code == 201, key.text
        keys[name] = {"Authorization": f"Bearer {key.json()['secret']}"}
    return keys


def crossings(client: Any, ledger: Ledger) -> list[str]:
    """Documents a tenant's key could see although they are the other tenant's."""
    seen = []
    for tenant, auth in ledger.keys.items():
        listed = request(client, "GET", "/documents", params={"limit": 500}, headers=auth).json()
        seen += [f"{tenant} lists {d['id']}" for d in listed["items"] if d["collection"] != tenant]
        hits = request(
            client, "GET", "/search", params={"q": "document version", "k": 50}, headers=auth
        ).json()["results"]
        seen += [f"{tenant} finds {h['document_id']}" for h in hits if h["collection"] != tenant]
        for doc_id, owner in list(ledger.owner.items())[:20]:
            if owner != tenant:
                answer = request(client, "GET", f"/documents/{doc_id}", headers=auth)
                if answer.status_code != 404:
                    seen.append(f"{tenant} reads {doc_id}: {answer.status_code}")
    return seen


def test_concurrent_uploads_versions_and_deletes_lose_nothing(
    stack: Stack, reliability_report: dict[str, Any]
) -> None:
    rng = random.Random(500)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=UPLOADS)
    ledger = Ledger()
    with stack.client() as client:
        ledger.keys = tenants(client)
    seeds = [random.Random(n) for n in range(UPLOADS)]
    stop = threading.Event()

    def op(n: int, client: Any) -> None:
        if stop.is_set():
            return
        try:
            run_op(client, ledger, n, kinds[n], seeds[n])
        except BaseException:
            stop.set()  # one client's failure fails the test: the others stop with it
            raise

    started = time.monotonic()
    with stack.client(timeout=120) as client:
        pool = ThreadPoolExecutor(CLIENTS)
        try:
            list(pool.map(lambda n: op(n, client), range(UPLOADS)))
        finally:
            # No client outlives the test's assertions, nor touches the client once closed.
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
    upload_seconds = time.monotonic() - started

    with stack.client() as client:
        reports, settle = wait_terminal(
            client,
            set(ledger.expected),
            # About 7 minutes on a quiet machine; the stall bound catches a stop sooner.
            timeout=3600 if FULL else 300,
            done=lambda d: (
                d["status"] == ledger.expected.get(d.get("id", ""), "indexed")
                or d["status"] in ("failed", "rejected")
            ),
        )
        state = audit(stack, client, Scope(frozenset(ledger.expected), part="load"))
        crossed = crossings(client, ledger)
    final = {doc_id: reports[doc_id]["status"] for doc_id in ledger.expected}
    lost = sorted(
        i for i, want in ledger.expected.items() if want == "indexed" and final[i] != want
    )
    not_retired = sorted(
        i for i, want in ledger.expected.items() if want == "deleted" and final[i] != want
    )
    latencies = sorted(t for times in ledger.latencies.values() for t in times)
    reliability_report["load"] = {
        **ran_at(),
        "uploads": UPLOADS,
        "clients": CLIENTS,
        "answers": dict(sorted(ledger.answers.items())),
        "request_p50_seconds": round(latencies[len(latencies) // 2], 3),
        "request_p95_seconds": round(latencies[int(len(latencies) * 0.95)], 3),
        "request_p50_p95_seconds_by_kind": {
            kind: [round(_quantile(times, 0.5), 3), round(_quantile(times, 0.95), 3)]
            for kind, times in sorted(ledger.latencies.items())
        },
        "requests_seconds": round(upload_seconds, 1),
        "seconds_to_settle_after_requests": round(settle, 1),
        "documents": len(ledger.expected),
        "documents_lost": len(lost),
        "deleted_or_superseded_still_live": len(not_retired),
        "unexpected_answers": ledger.broken[:20],
        "collections": len(TENANTS),
        "seen_across_collections": len(crossed),
        **state.to_dict(),
    }
    assert not ledger.broken, ledger.broken[:20]
    assert not crossed, crossed[:20]
    assert not lost, [(i, reports[i]) for i in lost[:5]]
    assert not not_retired, [(i, final[i]) for i in not_retired[:10]]
    assert state.duplicates == 0, (state.orphan_vectors[:10], state.same_bytes_twice[:10])
    assert not state.mismatched, state.mismatched
    assert state.chroma_count == state.catalog_chunks_live
    assert all(healthy(stack).values())
