"""Embedders are found by name: the package's own, and those of plugins installed beside it."""

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag_pipeline.core.stages.embedders import (
    ModelUnavailable,
    embedder_factories,
    get_embedder,
    max_tokens_for,
)
from rag_pipeline.core.stages.embedders.hashing import HashEmbedder

# A plugin as pip would install it: a module, and a distribution's metadata naming its hook in
# the entry point group.
PLUGIN = """
import numpy as np


class ConstantEmbedder:
    model_name = "constant-3"
    max_tokens = 17
    tokenizer_path = ""
    dimension = 3

    def __init__(self, batch_size):
        self.batch_size = batch_size

    def use_threads(self, threads):
        return None

    def embed(self, texts):
        return np.ones((len(texts), 3), dtype=np.float32)


def register_embedders(register):
    register("constant-3", ConstantEmbedder)
"""


@pytest.fixture()
def fresh_lookup() -> Iterator[None]:
    embedder_factories.cache_clear()
    get_embedder.cache_clear()
    yield
    embedder_factories.cache_clear()
    get_embedder.cache_clear()


@pytest.fixture()
def installed_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_lookup: None
) -> Iterator[None]:
    (tmp_path / "constant_embedder.py").write_text(PLUGIN)
    meta = tmp_path / "constant_embedder-1.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: constant-embedder\nVersion: 1.0\n")
    (meta / "entry_points.txt").write_text(
        "[rag_ingest.embedders]\nconstant = constant_embedder:register_embedders\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("constant_embedder", None)


def test_the_hash_embedder_is_registered_without_installing_the_package(
    fresh_lookup: None,
) -> None:
    embedder = get_embedder("hash-384")
    assert isinstance(embedder, HashEmbedder)
    first = embedder.embed_documents(["oil prices rose"])
    again = embedder.embed_documents(["oil prices rose"])
    assert first.shape == (1, 384) and np.array_equal(first, again)
    assert np.linalg.norm(first[0]) == pytest.approx(1.0)
    assert np.array_equal(embedder.embed_query("oil prices rose"), first[0])
    assert max_tokens_for("hash-384") == embedder.max_tokens > 0


def test_a_plugin_of_the_older_interface_embeds_documents_and_queries_alike(
    installed_plugin: None,
) -> None:
    assert {"hash-384", "constant-3"} <= set(embedder_factories())
    embedder = get_embedder("constant-3", 8)
    assert embedder.model_name == "constant-3" and embedder.dimension == 3
    assert embedder.embed_documents(["a", "b"]).tolist() == [[1.0] * 3] * 2
    assert embedder.embed_query("a").tolist() == [1.0] * 3
    assert max_tokens_for("constant-3") == 17


def test_an_unknown_name_is_a_model_directory_that_must_exist(fresh_lookup: None) -> None:
    with pytest.raises(ModelUnavailable, match="'hash-384'"):
        get_embedder("no-such-model")
