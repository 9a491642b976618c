"""Checks shared by the extraction tests: readable errors, and no sandbox child left behind."""

import multiprocessing
import os
from pathlib import Path

from rag_pipeline.core.stages.extract import ERROR_CODES, ExtractionError

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
