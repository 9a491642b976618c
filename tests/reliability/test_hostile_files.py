"""Hostile files against the whole stack: each is its own document's failure (or indexed, where
the file is legitimate once bounded), the good document beside them is indexed, /health keeps
answering, and no process of the stack grows past the extraction memory limit over its own
baseline.

The files are the attacks of docs/security.md, made small by tests/support/hostile.py, uploaded
in one request so they arrive together and share runs with the good document.
"""

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability.harness import FULL, Stack, healthy, wait_terminal
from support import hostile

from bench.harness.processes import in_groups
from bench.harness.results import ran_at
from rag_pipeline.settings import Settings

pytestmark = pytest.mark.reliability

GOOD_PHRASE = "quartermaster lanterns beside hostile neighbours"


def _files() -> dict[str, tuple[bytes, str, set[str]]]:
    """name -> (bytes, content type, the outcomes allowed: `indexed` or a failure code)."""
    files = {
        "bomb.docx": (hostile.docx_bomb(), "application/octet-stream", {"too_large"}),
        "spaces.odt": (hostile.odt_spaces(), "application/octet-stream", {"indexed"}),
        "shared.xlsx": (hostile.xlsx_shared_string(), "application/octet-stream", {"too_large"}),
        # Many frames decoded one at a time (the full 150-frame attack, with its own time bound,
        # is tests/core/stages/extract/test_limits.py; this stack's bound is 7 s).
        "frames.tif": (hostile.tiff_frames(40, 2000, "Hostile frames"), "image/tiff", {"indexed"}),
        "huge.png": (hostile.png_of(12000), "image/png", {"too_large"}),
        # Exponential for the old sniffing pattern; linear now, so an ordinary text document.
        "comments.html": (b"<!---->" * 4000 + b"x", "text/html", {"indexed"}),
        "good.docx": (hostile.good_docx(GOOD_PHRASE), "application/octet-stream", {"indexed"}),
    }
    if FULL:
        # OCR of a page rendered at the pixel bound: slow on a busy machine, so full runs only.
        files["huge.pdf"] = (hostile.pdf_huge_page(), "application/pdf", {"no_text_layer"})
    return files


class Watch:
    """Polls /health and the stack's processes' resident memory until stopped."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.slowest_health = 0.0
        self.failed_health: list[str] = []
        self.peak_rss_mb: dict[int, tuple[float, str]] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._health), threading.Thread(target=self._rss)]

    def rss_now(self) -> dict[int, tuple[float, str]]:
        found = {}
        for pid, cmd in in_groups(self.stack.groups):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        found[pid] = (int(line.split()[1]) / 1024, cmd[:120])
            except OSError:
                continue
        return found

    def _health(self) -> None:
        with httpx.Client(base_url=self.stack.api_url, timeout=10) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status = client.get("/health").status_code
                    if status != 200:
                        self.failed_health.append(str(status))
                except httpx.TransportError as exc:
                    self.failed_health.append(repr(exc))
                self.slowest_health = max(self.slowest_health, time.monotonic() - started)
                self._stop.wait(0.25)

    def _rss(self) -> None:
        while not self._stop.is_set():
            for pid, (mb, cmd) in self.rss_now().items():
                if mb > self.peak_rss_mb.get(pid, (0.0, ""))[0]:
                    self.peak_rss_mb[pid] = (mb, cmd)
            self._stop.wait(0.1)

    def __enter__(self) -> "Watch":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_hostile_files_fail_alone_and_the_stack_stays_responsive_and_bounded(
    stack: Stack, reliability_report: dict[str, Any]
) -> None:
    files = _files()
    limit_mb = Settings().extract_memory_mb
    watch = Watch(stack)
    baseline_mb = max((mb for mb, _ in watch.rss_now().values()), default=0.0)
    with watch, stack.client() as client:
        posted = client.post(
            "/documents",
            files=[("file", (name, data, kind)) for name, (data, kind, _) in files.items()],
        )
        assert posted.status_code == 202, posted.text
        ids = {doc["filename"]: doc["id"] for doc in posted.json()["documents"]}
        assert set(ids) == set(files), ids
        reports, took = wait_terminal(client, set(ids.values()), timeout=900)
        found = client.get("/search", params={"q": GOOD_PHRASE, "k": 3, "mode": "lexical"})

    outcomes = {}
    for name, doc_id in ids.items():
        report = reports[doc_id]
        error = report.get("error") or {}
        outcomes[name] = report["status"] if report["status"] == "indexed" else error.get("code")
    peak_mb, peak_cmd = max(watch.peak_rss_mb.values(), default=(0.0, ""))
    reliability_report["hostile_files"] = {
        **ran_at(),
        "outcomes": outcomes,
        "seconds": round(took, 1),
        "slowest_health_s": round(watch.slowest_health, 3),
        "baseline_rss_mb": round(baseline_mb),
        "peak_rss_mb": round(peak_mb),
        "peak_process": peak_cmd,
        "memory_limit_mb": limit_mb,
    }
    wrong = {n: o for n, o in outcomes.items() if o not in files[n][2]}
    assert not wrong, (wrong, reports)
    assert found.status_code == 200 and found.json()["results"], found.text
    assert found.json()["results"][0]["document_id"] == ids["good.docx"], found.json()
    assert not watch.failed_health, watch.failed_health
    assert watch.slowest_health < 2.0, watch.slowest_health
    assert watch.peak_rss_mb, "no process of the stack was seen"
    assert peak_mb <= baseline_mb + limit_mb, (peak_mb, peak_cmd, baseline_mb, limit_mb)
    assert all(healthy(stack).values())
