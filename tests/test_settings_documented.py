"""One settings class: documented from itself (docs/configuration.md, .env.example), the only
reader of the environment, and the same in every process."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.env import REPO

from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.definitions import build_definitions
from rag_pipeline.orchestration import schedules
from rag_pipeline.settings import Settings
from rag_pipeline.settings_table import (
    TABLE_BEGIN,
    TABLE_END,
    env_names,
    markdown_table,
    shown_default,
    with_current_table,
)

# (Names ending in _TAG are Dagster's run-tag constants, not variables.)
_VAR = re.compile(r"\b((?:RAG|DAGSTER|BACKUP|CLEANUP)_[A-Z0-9_]+(?<!_TAG)|RUN_RETENTION_DAYS)\b")
# A variable's name as a string literal: what reading it by hand takes.
_NAMED = re.compile(r"""["']((?:RAG|BACKUP|CLEANUP)_[A-Z0-9_]+|RUN_RETENTION_DAYS)["']""")
CONFIGURATION = REPO / "docs" / "configuration.md"


def _configuration() -> str:
    return CONFIGURATION.read_text()


def _env_example() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def _used_anywhere() -> set[str]:
    names: set[str] = set()
    for folder in ("rag_pipeline", "rag_api", "scripts", "bench", "tests"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in {".py", ".sh", ".yaml"} and path.name != Path(__file__).name:
                names |= set(_VAR.findall(path.read_text()))
    for name in ("Makefile", "Dockerfile", "docker-compose.yml", "dagster.yaml"):
        names |= set(_VAR.findall((REPO / name).read_text()))
    return names


def test_the_configuration_table_is_generated_from_the_class() -> None:
    page = _configuration()
    assert page.count(TABLE_BEGIN) == 1 and page.count(TABLE_END) == 1
    table = page.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0]
    assert table == markdown_table(), (
        "docs/configuration.md is stale: run "
        "`python -m rag_pipeline.settings --update docs/configuration.md` (or `make docs`)"
    )
    assert with_current_table(page) == page


@pytest.mark.stack
def test_the_generator_rewrites_only_the_table(tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    page.write_text(f"# Before\n\n{TABLE_BEGIN}| stale |\n{TABLE_END}\n\n# After\n")
    out = subprocess.run(
        [sys.executable, "-m", "rag_pipeline.settings", "--update", str(page)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert (
        page.read_text() == f"# Before\n\n{TABLE_BEGIN}{markdown_table()}{TABLE_END}\n\n# After\n"
    )


def test_env_example_lists_every_setting_with_its_default() -> None:
    example = _env_example()
    for name, field in Settings.model_fields.items():
        variable = env_names(field, name)[0]
        assert variable in example, f"{variable} is missing from .env.example"
        assert example[variable] == shown_default(field), variable


def test_every_variable_named_anywhere_is_documented() -> None:
    used = _used_anywhere()
    assert {"RAG_DATA_DIR", "BACKUP_CRON", "DAGSTER_HOME"} <= used
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", _configuration()))
    assert used - documented == set()
    old_names = {
        old for name, field in Settings.model_fields.items() for old in env_names(field, name)[1:]
    }
    assert used - old_names - set(_env_example()) == set()


def test_no_code_reads_a_variable_outside_the_settings_class() -> None:
    offenders = []
    for folder in ("rag_pipeline", "rag_api"):
        for path in (REPO / folder).rglob("*.py"):
            if path == REPO / "rag_pipeline" / "settings.py":
                continue
            text = path.read_text()
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in _NAMED.findall(text)]
            if "EnvVar" in text:
                offenders.append(f"{path.relative_to(REPO)}: EnvVar")
    assert offenders == []


@pytest.mark.parametrize(
    ("old", "field", "value", "expected"),
    [
        ("BACKUP_CRON", "backup_cron", "5 4 * * *", "5 4 * * *"),
        ("BACKUP_RETENTION_DAYS", "backup_retention_days", "3", 3.0),
        ("BACKUP_TIMEZONE", "schedule_timezone", "Europe/Paris", "Europe/Paris"),
        ("CLEANUP_CRON", "cleanup_cron", "15 * * * *", "15 * * * *"),
        ("CLEANUP_PROCESSED_AFTER_HOURS", "cleanup_processed_after_hours", "2", 2.0),
        ("CLEANUP_REJECTED_AFTER_DAYS", "cleanup_rejected_after_days", "4", 4.0),
        ("CLEANUP_PARTIAL_AFTER_HOURS", "cleanup_partial_after_hours", "5", 5.0),
        ("RUN_RETENTION_DAYS", "run_retention_days", "6", 6.0),
    ],
)
def test_older_names_still_work_and_the_rag_name_wins(
    monkeypatch: pytest.MonkeyPatch, old: str, field: str, value: str, expected: object
) -> None:
    monkeypatch.setenv(old, value)
    assert getattr(Settings(), field) == expected
    [preferred] = [n for n in env_names(Settings.model_fields[field], field) if n != old]
    assert preferred == f"RAG_{field.upper()}"
    monkeypatch.setenv(preferred, "1")
    assert str(getattr(Settings(), field)) in {"1", "1.0"}


def test_the_schedules_follow_the_settings(
    monkeypatch: pytest.MonkeyPatch, store: DocumentStore
) -> None:
    monkeypatch.setenv("BACKUP_CRON", "5 4 * * *")
    monkeypatch.setenv("RAG_CLEANUP_CRON", "15 * * * *")
    monkeypatch.setenv("RAG_SCHEDULE_TIMEZONE", "Europe/Paris")
    settings = Settings()
    defs = build_definitions(settings)
    assert {s.name for s in defs.sensors or []} >= set(schedules.SCHEDULES)
    # Until someone changes them through the API, the registry holds nothing and they follow
    # the settings.
    found = {
        name: schedules.current(store.registry, name, settings) for name in schedules.SCHEDULES
    }
    assert {name: (s.cron, s.timezone) for name, s in found.items()} == {
        "backup_schedule": ("5 4 * * *", "Europe/Paris"),
        "cleanup_schedule": ("15 * * * *", "Europe/Paris"),
    }


_LOAD = """
import json, multiprocessing, os

def folders(_=None):
    from rag_pipeline.definitions import defs
    resources = defs.resources
    return [resources["documents"].data_dir, resources["operations"].backup_dir]

if __name__ == "__main__":
    before = dict(os.environ)
    here = folders()
    # Dagster's code server starts each run worker this way, with its environment and
    # working directory.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        worker = pool.apply(folders)
    unchanged = before == dict(os.environ)
    print(json.dumps({"here": here, "worker": worker, "environ_unchanged": unchanged}))
"""


@pytest.mark.stack
def test_relative_paths_resolve_against_the_start_directory_in_every_process(
    tmp_path: Path,
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "RAG_DATA_DIR": "state/data",
        "RAG_BACKUP_DIR": "state/backups",
    }
    # A file, not `-c`: a spawned process imports its parent's main module.
    script = tmp_path / "load.py"
    script.write_text(_LOAD)
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    expected = [str(tmp_path / "state" / "data"), str(tmp_path / "state" / "backups")]
    assert seen["here"] == seen["worker"] == expected
    assert seen["environ_unchanged"]
