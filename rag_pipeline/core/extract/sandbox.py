"""The extraction sandbox: a document is read in a child process with a bound on its time.

pypdf has no way to interrupt a pathological page (a corpus file with 16.5k tiny text runs
takes ~10 s on a single page), so reading happens in a forkserver child that the kernel stops
once it has used its processor time (RLIMIT_CPU). The parent keeps a wall-clock backstop for a
child that blocks without computing.

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
from typing import Any

from charset_normalizer.constant import IANA_SUPPORTED

from rag_pipeline.core.extract.model import ExtractedText, ExtractionError, one_line_reason
from rag_pipeline.core.extract.sniff import looks_like_pdf

Extractor = Callable[[bytes, str], ExtractedText]

# The bound is on the child's processor time: on a busy machine a long but healthy document
# (a 234-page book takes pypdf ~10 s) would otherwise time out while a pathological page that
# would have timed out anyway is merely slower. Wall time still ends at twice the bound, so a
# child that blocks without computing cannot hang a run either.
_WALL_FACTOR = 2.0
_PACKAGE = __name__.rpartition(".")[0]


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
    extractor: Extractor, data: bytes, filename: str, timeout_s: float
) -> ExtractedText:
    """`extractor(data, filename)` in a child that the kernel stops after `timeout_s` seconds of
    processor time, rounded up to whole seconds as RLIMIT_CPU counts them, or that is killed
    after twice `timeout_s` in wall time, whichever comes first.

    `extractor` must be a module-level function: the child finds it by its name. The child is
    always reaped before this returns.
    """
    cpu_limit_s = max(1, math.ceil(timeout_s))
    context = _forkserver()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_main,
        args=(sender, extractor, data, filename, cpu_limit_s),
        name="extract_document",
        daemon=True,
    )
    message: tuple[Any, ...] | None = None
    answered = False
    started = time.monotonic()
    deadline = started + _WALL_FACTOR * timeout_s
    try:
        try:
            child.start()
        except OSError as err:  # the child died while the document was piped to it
            raise RuntimeError(f"the text extraction process died on start: {err}") from err
        # Our copy must go, or a dead child would never show up as EOF on the pipe.
        sender.close()
        while True:
            # Ready on a result and on EOF alike: a child the kernel killed answers at once.
            answered = receiver.poll(max(0.0, deadline - time.monotonic()))
            if not answered:
                break
            try:
                received = receiver.recv()
            except EOFError:
                break
            if received[0] != "extend":
                message = received
                break
            # The child starts a page of OCR, which has its own bound (see `extend_bound`).
            deadline += _WALL_FACTOR * received[1]
            cpu_limit_s += math.ceil(received[1])
    finally:
        exitcode = _reap(child, grace_s=0.0 if message is None else 5.0)
        receiver.close()
        sender.close()
    if message is None:
        if not answered:  # the wall-clock backstop: a child that blocked, or got no processor
            raise ExtractionError(
                "extraction_timeout",
                f"text extraction took longer than {timeout_s:g} s "
                f"(no result after {deadline - started:g} s of wall time)",
            )
        if _stopped_by_cpu_limit(exitcode, time.monotonic() - started, cpu_limit_s):
            raise ExtractionError(
                "extraction_timeout", f"text extraction took longer than {timeout_s:g} s"
            )
        reason = _exit_reason(exitcode)
        if looks_like_pdf(data) and exitcode is not None and exitcode < 0:
            # A signal (segfault, OOM killer) while parsing: the document is to blame.
            raise ExtractionError("damaged_pdf", f"the PDF crashed the text extractor ({reason})")
        raise RuntimeError(f"the text extraction process died without a result ({reason})")
    if message[0] == "ok":
        result: ExtractedText = message[1]
        return result
    if message[0] == "error":
        raise ExtractionError(message[1], message[2])
    raise RuntimeError(f"text extraction failed: {message[1]}")


def _stopped_by_cpu_limit(exitcode: int | None, lived_s: float, cpu_limit_s: int) -> bool:
    if exitcode == -signal.SIGXCPU:  # the kernel's signal at the soft limit
        return True
    # SIGKILL comes at a hard limit (an inherited one) only to a child that survived SIGXCPU;
    # but the OOM killer sends it too. A single-threaded reader cannot use more processor time
    # than it has lived, so only a child that lived that long can have reached the limit.
    return exitcode == -signal.SIGKILL and lived_s >= cpu_limit_s + 1


# The child's end of its pipe to the parent, while it extracts; None in any other process.
_parent: Connection | None = None


def extend_bound(seconds: float) -> None:
    """Grant the running extraction `seconds` more of processor and wall time: a format
    reader calls this before each unit of work that has a bound of its own (a page of OCR),
    so a long scan is bounded page by page rather than failed as a whole. Outside the
    sandbox it does nothing."""
    if _parent is None:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if soft != resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_CPU, (_capped(soft + math.ceil(seconds), hard), hard))
    _parent.send(("extend", seconds))


def _capped(seconds: int, hard: int) -> int:
    return seconds if hard == resource.RLIM_INFINITY else min(seconds, hard)


def _child_main(
    sender: Connection, extractor: Extractor, data: bytes, filename: str, cpu_limit_s: int
) -> None:
    global _parent
    _parent = sender
    _limit_processor_time(cpu_limit_s)
    # This process is ours alone: pypdf warns once per font and page, with kilobyte-long
    # dict reprs (400 times for the 400-page corpus file), which would flood worker logs.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        message: tuple[Any, ...] = ("ok", extractor(data, filename))
    except ExtractionError as err:
        message = ("error", err.code, err.message)
    except Exception as err:  # a bug, reported to the parent as such
        message = ("bug", f"{type(err).__name__}: {one_line_reason(err)}")
    sender.send(message)
    sender.close()


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
