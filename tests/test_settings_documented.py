"""Every environment variable the code reads is documented in the README and .env.example."""

import re
from pathlib import Path

from conftest import REPO

from rag_pipeline.resources import ENV_DEFAULTS

_VAR = re.compile(r"\b((?:RAG|DAGSTER|BACKUP|CLEANUP)_[A-Z0-9_]+|RUN_RETENTION_DAYS)\b")
_SOURCES = ["rag_pipeline", "rag_api", "scripts", "bench", "tests"]


def _used() -> set[str]:
    from rag_api.settings import Settings

    names = {f"RAG_{field.upper()}" for field in Settings.model_fields}
    for folder in _SOURCES:
        for path in (REPO / folder).rglob("*"):
            if path.suffix in {".py", ".sh", ".yaml"} and path.name != Path(__file__).name:
                names |= set(_VAR.findall(path.read_text()))
    names |= set(_VAR.findall((REPO / "Makefile").read_text()))
    return names


def _documented_in_readme() -> set[str]:
    readme = (REPO / "README.md").read_text()
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", readme, flags=re.M))


def _in_env_example() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def test_every_variable_is_in_the_readme_table_and_env_example() -> None:
    used = _used()
    assert "RAG_DATA_DIR" in used
    assert used - _documented_in_readme() == set()
    assert used - set(_in_env_example()) == set()


def test_env_example_shows_the_code_defaults() -> None:
    example = _in_env_example()
    for name, default in ENV_DEFAULTS.items():
        if name.endswith("_DIR"):
            assert Path(example[name]) == Path(default), name
        else:
            assert example[name] == default, name
