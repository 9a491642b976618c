"""What the rag-pipeline commands share: exit codes, the instance, the store, JSON lines."""

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag_pipeline.settings import Settings

EXIT_OK, EXIT_ERROR = 0, 1


def instance() -> Any:
    from dagster import DagsterInstance

    # Dagster insists on an absolute DAGSTER_HOME; the default is the checkout's own.
    home = Path(os.environ.get("DAGSTER_HOME") or "dagster_home").resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    return DagsterInstance.get()


def store(settings: Settings) -> Any:
    from rag_pipeline.core.storage.data_dir import DocumentStore

    return DocumentStore(settings.data_dir, settings.registry_url or None)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str))


def unknown_collections(store: Any, names: Sequence[str] | None) -> list[str]:
    known = {c.name for c in store.registry.tenancy.collections()}
    return [name for name in names or [] if name not in known]
