"""Checks shared by the extraction tests: readable errors, and no sandbox child left behind."""

import multiprocessing
import os
import signal
import time
from pathlib import Path

from rag_pipeline.core.stages.extract import ERROR_CODES, ExtractedText, ExtractionError

# The asset check warns above this share; every readable corpus document stays below it.
WARN_SHARE = 0.05


def forkserver_children() -> list[tuple[int, str]]:
    """(pid, state) of every live or zombie child of this process's fork server."""
    procs: dict[int, tuple[int, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        procs[int(stat.parent.name)] = (int(fields[1]), fields[0])
    servers = set()
    for pid, (ppid, _) in procs.items():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if ppid == os.getpid() and b"multiprocessing.forkserver" in cmdline:
            servers.add(pid)
    return [(pid, state) for pid, (ppid, state) in procs.items() if ppid in servers]


def assert_no_child_left() -> None:
    assert multiprocessing.active_children() == []
    assert forkserver_children() == []


def assert_readable_message(err: ExtractionError) -> None:
    assert err.code in ERROR_CODES
    message = str(err)
    assert message == err.message
    assert "\n" not in message and 10 < len(message) <= 200, message
    assert "Traceback" not in message and "{'/" not in message, message


def hoard(data: bytes, filename: str) -> ExtractedText:
    """An extractor (for `run_bounded`) that takes `data` megabytes and keeps them, as a
    runaway parser would."""
    held = [bytearray(1024 * 1024) for _ in range(int(data))]
    raise AssertionError(f"{len(held)} MB taken: the memory limit did not hold")


def hoard_then_crash(data: bytes, filename: str) -> ExtractedText:
    """Take `data` megabytes, then crash as a reader in C does when an allocation fails (after
    a second, in which the parent looks at the child's memory ten times)."""
    held = [bytearray(1024 * 1024) for _ in range(int(data))]
    time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGSEGV)
    raise AssertionError(f"{len(held)} MB taken, and still alive")


def extend_forever(data: bytes, filename: str) -> ExtractedText:
    """Ask for an hour of OCR time, a minute at a time, then compute without end."""
    from rag_pipeline.core.stages.extract.sandbox import extend_bound

    for _ in range(60):
        extend_bound(60)
    while True:
        pass
