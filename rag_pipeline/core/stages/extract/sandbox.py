"""The extraction sandbox: a document is read in a child process with bounds on its time and
memory.

pypdf has no way to interrupt a pathological page (a corpus file with 16.5k tiny text runs
takes ~10 s on a single page), so reading happens in a forkserver child that the kernel stops
once it has used its processor time (RLIMIT_CPU). The parent keeps a wall-clock backstop for a
child that blocks without computing.

Memory is bounded the same way, by the kernel: the child's address space (RLIMIT_AS) may grow by
`ExtractionLimits.memory_mb` beyond its start-up footprint. An allocation past it fails: Python
raises MemoryError, which the child reports as the document's `resource_limit`. A reader in C
may crash instead (SIGSEGV, SIGABRT), and the kernel's OOM killer ends a process with SIGKILL
when the machine runs out; the parent watches the child's address space while it waits, so such
a death near the limit (and any SIGKILL that is not the processor-time bound) is
`resource_limit` too, never a failure of the whole batch.

The child is a `multiprocessing` process, so the caller must not itself be a daemonic
`multiprocessing` process (a `multiprocessing.Pool` worker, say): those may not start children.
Dagster's run workers (`dagster api execute_run`, started with subprocess, steps in-process)
and plain command-line processes are not daemonic.
"""

import logging
import math
import multiprocessing
import resource
import signal
import time
from collections.abc import Callable
from functools import lru_cache
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from charset_normalizer.constant import IANA_SUPPORTED

from rag_pipeline.core.stages.extract.limits import (
    DEFAULT_LIMITS,
    MB,
    ExtractionLimits,
    out_of_memory,
)
from rag_pipeline.core.stages.extract.model import ExtractionError, one_line_reason
from rag_pipeline.core.stages.extract.sniff import looks_like_pdf

T = TypeVar("T")
# What a child computes from a file: its extracted text, or what admission makes of it.
Extractor = Callable[[bytes, str], T]

# The bound is on the child's processor time: on a busy machine a long but healthy document
# (a 234-page book takes pypdf ~10 s) would otherwise time out while a pathological page that
# would have timed out anyway is merely slower. Wall time still ends at twice the bound, so a
# child that blocks without computing cannot hang a run either.
_WALL_FACTOR = 2.0
_PACKAGE = __name__.rpartition(".")[0]
# How often the parent looks at the child's address space while it waits.
_MEMORY_LOOK_S = 0.1
# A child that crashed with its address space this close to its limit (as a share of what it
# may add) crashed for memory.
_NEAR_LIMIT = 0.75


@lru_cache(maxsize=1)
def _forkserver() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    # Import the readers (pypdf, charset-normalizer) once in the fork server, not in every
    # child, and the ~90 codecs charset-normalizer tries (30 ms per child otherwise). Ignored
    # if something else started the fork server earlier; children then import them themselves.
    codecs_tried = [f"encodings.{name}" for name in IANA_SUPPORTED]
    context.set_forkserver_preload([_PACKAGE, *codecs_tried])
    return context


def run_bounded(
    extractor: Extractor[T],
    data: bytes,
    filename: str,
    timeout_s: float,
    limits: ExtractionLimits = DEFAULT_LIMITS,
) -> T:
    """`extractor(data, filename)` in a child that the kernel stops after `timeout_s` seconds of
    processor time, rounded up to whole seconds as RLIMIT_CPU counts them, or that is killed
    after twice `timeout_s` in wall time, whichever comes first. OCR pages extend both bounds
    (`extend_bound`), up to `limits.budget_s` in all; the child's memory is bounded by
    `limits.memory_mb`.

    `extractor` must be a module-level function: the child finds it by its name. The child is
    always reaped before this returns.
    """
    budget_s = max(1, math.ceil(limits.budget_s))
    cpu_limit_s = min(max(1, math.ceil(timeout_s)), budget_s)
    context = _forkserver()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_main,
        args=(sender, extractor, data, filename, cpu_limit_s, budget_s, limits),
        name="extract_document",
        daemon=True,
    )
    message: tuple[Any, ...] | None = None
    answered = False
    memory = _Memory()
    wall_s = min(timeout_s, budget_s)  # the wall-clock backstop is twice this
    started = time.monotonic()
    deadline = started + _WALL_FACTOR * wall_s
    try:
        try:
            child.start()
        except OSError as err:  # the child died while the document was piped to it
            raise RuntimeError(f"the text extraction process died on start: {err}") from err
        # Our copy must go, or a dead child would never show up as EOF on the pipe.
        sender.close()
        while True:
            # Ready on a result and on EOF alike: a child the kernel killed answers at once.
            remaining = deadline - time.monotonic()
            answered = receiver.poll(max(0.0, min(remaining, _MEMORY_LOOK_S)))
            if not answered:
                if remaining > _MEMORY_LOOK_S:
                    memory.look(child.pid)
                    continue
                break
            try:
                received = receiver.recv()
            except EOFError:
                break
            if received[0] == "memory":
                memory.start, memory.limit = received[1], received[2]
                continue
            if received[0] != "extend":
                message = received
                break
            # The child starts a page of OCR, which has its own bound (see `extend_bound`).
            cpu_limit_s = min(cpu_limit_s + math.ceil(received[1]), budget_s)
            wall_s = min(wall_s + received[1], budget_s)
            deadline = started + _WALL_FACTOR * wall_s
    finally:
        exitcode = _reap(child, grace_s=0.0 if message is None else 5.0)
        receiver.close()
        sender.close()
    if message is None:
        lived_s = time.monotonic() - started
        if not answered:  # the wall-clock backstop: a child that blocked, or got no processor
            wall = _timeout(timeout_s, cpu_limit_s, budget_s)
            raise ExtractionError(
                wall.code, f"{wall.message} (no result after {deadline - started:g} s of wall time)"
            )
        if _stopped_by_cpu_limit(exitcode, lived_s, cpu_limit_s):
            raise _timeout(timeout_s, cpu_limit_s, budget_s)
        raise _died(exitcode, looks_like_pdf(data), memory, limits)
    if message[0] == "ok":
        result: T = message[1]
        return result
    if message[0] == "error":
        raise ExtractionError(message[1], message[2])
    raise RuntimeError(f"text extraction failed: {message[1]}")


def _timeout(timeout_s: float, cpu_limit_s: int, budget_s: int) -> ExtractionError:
    if cpu_limit_s >= budget_s > timeout_s:
        return ExtractionError(
            "extraction_timeout",
            f"text extraction used up its total budget of {budget_s} s "
            "(RAG_EXTRACTION_BUDGET_SECONDS)",
        )
    return ExtractionError(
        "extraction_timeout", f"text extraction took longer than {timeout_s:g} s"
    )


class _Memory:
    """The child's address space as the parent last saw it, and the bound the child set."""

    def __init__(self) -> None:
        self.start = 0  # the child's address space when it set its limit
        self.limit = 0  # RLIMIT_AS; 0 until the child says
        self.peak = 0  # the largest address space seen (VmPeak, the kernel's high-water mark)

    def look(self, pid: int | None) -> None:
        try:
            with open(f"/proc/{pid}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"VmPeak:"):
                        self.peak = max(self.peak, int(line.split()[1]) * 1024)
                        return
        except (OSError, ValueError):  # gone already, or not Linux
            return

    @property
    def near_limit(self) -> bool:
        return self.limit > 0 and self.peak - self.start >= _NEAR_LIMIT * (self.limit - self.start)


def _died(
    exitcode: int | None, is_pdf: bool, memory: _Memory, limits: ExtractionLimits
) -> ExtractionError | RuntimeError:
    """Why a child ended without an answer, and whose fault that is."""
    reason = _exit_reason(exitcode)
    if exitcode == -signal.SIGKILL or (exitcode is not None and exitcode < 0 and memory.near_limit):
        # SIGKILL that is not the processor-time bound is the OOM killer's; a crash with the
        # address space at its limit is an allocation that failed in C.
        return ExtractionError(
            "resource_limit",
            f"text extraction ran out of memory ({reason}); a document may use "
            f"{limits.memory_mb} MB (RAG_EXTRACT_MEMORY_MB)",
        )
    if exitcode is not None and exitcode < 0:
        # A crash in a parser written in C: the document is to blame.
        if is_pdf:
            return ExtractionError("damaged_pdf", f"the PDF crashed the text extractor ({reason})")
        return ExtractionError(
            "damaged_document", f"the file crashed the text extractor ({reason})"
        )
    return RuntimeError(f"the text extraction process died without a result ({reason})")


def _stopped_by_cpu_limit(exitcode: int | None, lived_s: float, cpu_limit_s: int) -> bool:
    if exitcode == -signal.SIGXCPU:  # the kernel's signal at the soft limit
        return True
    # SIGKILL comes at a hard limit (an inherited one) only to a child that survived SIGXCPU;
    # but the OOM killer sends it too. A single-threaded reader cannot use more processor time
    # than it has lived, so only a child that lived that long can have reached the limit.
    return exitcode == -signal.SIGKILL and lived_s >= cpu_limit_s + 1


# The child's end of its pipe to the parent, while it extracts; None in any other process.
_parent: Connection | None = None
# The most processor time extensions may bring the child to, in whole seconds.
_budget_s = 0


def extend_bound(seconds: float) -> None:
    """Grant the running extraction `seconds` more of processor and wall time: a format
    reader calls this before each unit of work that has a bound of its own (a page of OCR),
    so a long scan is bounded page by page rather than failed as a whole. The document's
    total budget caps the sum, so a thousand pages cannot add up to hours. Outside the
    sandbox it does nothing."""
    if _parent is None:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if soft != resource.RLIM_INFINITY:
        extended = min(soft + math.ceil(seconds), _budget_s)
        resource.setrlimit(resource.RLIMIT_CPU, (_capped(extended, hard), hard))
    _parent.send(("extend", seconds))


def _capped(seconds: int, hard: int) -> int:
    return seconds if hard == resource.RLIM_INFINITY else min(seconds, hard)


def _child_main(
    sender: Connection,
    extractor: Extractor[Any],
    data: bytes,
    filename: str,
    cpu_limit_s: int,
    budget_s: int,
    limits: ExtractionLimits,
) -> None:
    global _parent, _budget_s
    _parent, _budget_s = sender, budget_s
    _limit_processor_time(cpu_limit_s)
    sender.send(("memory", *_limit_memory(limits.memory_mb)))
    # This process is ours alone: pypdf warns once per font and page, with kilobyte-long
    # dict reprs (400 times for the 400-page corpus file), which would flood worker logs.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        message: tuple[Any, ...] = ("ok", extractor(data, filename))
    except ExtractionError as err:
        message = ("error", err.code, err.message)
    except MemoryError:  # what failed to be allocated is freed with the traceback
        message = ("error", "resource_limit", out_of_memory(limits).message)
    except Exception as err:  # a bug, reported to the parent as such
        message = ("bug", f"{type(err).__name__}: {one_line_reason(err)}")
    try:
        sender.send(message)
    except MemoryError:  # a result too large to pickle within the limit
        del message
        sender.send(("error", "resource_limit", out_of_memory(limits).message))
    sender.close()


def _limit_memory(memory_mb: int) -> tuple[int, int]:
    """Bound the address space to its size now plus `memory_mb`: the readers this process
    imported take ~440 MB of address space (~100 MB resident) before any document, and their
    share is no document's doing. Returns (size now, limit)."""
    start = _address_space()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _capped(start + memory_mb * MB, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return start, limit


def _address_space() -> int:
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):  # not Linux: the limit is then the document's share alone
        pass
    return 0


def _limit_processor_time(seconds: int) -> None:
    # The bound rests on SIGXCPU's default action, ending the process: no inherited handler
    # may soften it. That action also dumps core, which no slow document should leave behind.
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # SIGXCPU at the soft limit. The hard limit stays as inherited, so that `extend_bound` can
    # raise the soft one (only a privileged process may raise a hard limit); with SIGXCPU's
    # default action ensured above, and the parent's wall-clock bound, none is needed.
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (_capped(seconds, hard), hard))


def _reap(child: BaseProcess, grace_s: float) -> int | None:
    if child.pid is None:  # start() itself failed
        return None
    child.join(grace_s)
    if child.exitcode is None:
        child.terminate()
        child.join(1.0)
    if child.exitcode is None:
        child.kill()
        child.join()
    exitcode = child.exitcode
    child.close()
    return exitcode


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
