"""Every module of the packages imports: a moved or renamed module leaves no stale import behind
(mypy, with ignore_missing_imports, would not notice one)."""

import importlib
import pkgutil

import pytest

import bench
import rag_api
import rag_pipeline

MODULES = sorted(
    info.name
    for package in (rag_pipeline, rag_api, bench)
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    if ".migrations." not in info.name
)


def test_the_packages_have_their_modules() -> None:
    assert len(MODULES) > 110, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)
