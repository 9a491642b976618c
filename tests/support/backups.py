"""Running the backup job and a restore the way an operator does."""

import os
import subprocess
from pathlib import Path
from typing import Any

from support.env import BIN, REPO
from support.runs import run_cli

# Child processes import this checkout and the tests' helpers.
CHILD_ENV = {"PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)])}
# The backup job as an operator runs it, from Dagster's command line.
CLI_BACKUP_JOB = [
    str(BIN / "dagster"),
    *("job", "execute", "-m", "rag_pipeline.definitions", "-j", "backup_job"),
]


def run_backup_job(*extra: str, **popen: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI_BACKUP_JOB, *extra],
        cwd=REPO,
        env={**os.environ, **CHILD_ENV},
        capture_output=True,
        text=True,
        timeout=600,
        **popen,
    )


def run_restore(archive: Path, data: Path, home: Path, *extra: str) -> tuple[int, str]:
    return run_cli(
        ["restore", str(archive), "--data-dir", str(data), "--dagster-home", str(home), *extra]
    )
