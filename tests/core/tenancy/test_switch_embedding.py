"""The switch's embedding of a document: into pending_embeddings with the new model, never the
document's own embeddings; a document whose chunks the new model cannot take whole fails. And
what tidying finishes after a swap that stopped part-way."""

import contextlib
import uuid

from rag_pipeline.core.retrieval.vector_index import VectorIndex, VectorRecord, connect
from rag_pipeline.core.stages.chunking import Chunk
from rag_pipeline.core.stages.embedders.hashing import HashEmbedder
from rag_pipeline.core.stages.ingest import StageError, StageResult
from rag_pipeline.core.storage import catalog
from rag_pipeline.core.tenancy.model_switch import PENDING, ModelSwitch


def _chunks(store, doc_id: str, tokens: int) -> None:  # type: ignore[no-untyped-def]
    text = "word " * tokens
    catalog.write_chunks(store, doc_id, [Chunk(doc_id, 0, 1, 1, 0, len(text), tokens, text)])


def test_the_new_model_embeds_into_the_pending_artifact_or_refuses_a_long_chunk(store) -> None:  # type: ignore[no-untyped-def]
    _chunks(store, "short", 40)
    _chunks(store, "long", 120)
    catalog.write_embeddings(store, "short", [0], HashEmbedder(384).embed(["x"]), "hash-384")
    model = HashEmbedder(256)
    model.max_tokens = 100

    outcomes = ModelSwitch(store).embed(["short", "long", "gone"], model)

    assert isinstance(outcomes["short"], StageResult)
    _, vectors, name = catalog.read_embeddings(store, "short", PENDING)
    assert (name, vectors.shape) == ("hash-256", (1, 256))
    assert catalog.read_embeddings(store, "short")[2] == "hash-384"  # still the active model's
    long, gone = outcomes["long"], outcomes["gone"]
    assert isinstance(long, StageError) and long.code == "rechunk_required"
    assert "120 tokens" in long.message and not store.artifact_path(PENDING, "long").exists()
    assert isinstance(gone, StageError) and gone.code == "missing_upstream"


class _Pool:
    """The index-write pool of a test with one writer: always free."""

    def release(self, doc_id: str) -> bool:
        return True

    def index_write(self, purpose: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def test_tidy_finishes_what_a_swap_stopped_part_way_left(store, chroma_url: str) -> None:  # type: ignore[no-untyped-def]
    registry = store.registry
    for doc_id in ("a", "b"):
        registry.lifecycle.register(
            doc_id,
            source_path=f"/in/{doc_id}",
            filename=f"{doc_id}.txt",
            sha256=doc_id * 64,
            size=3,
            origin="upload",
        )
    # `default` swapped to hash-256 in generation 2; the process died before the rest.
    registry.tenancy.update_collection("default", generation=2, embedding_model="hash-256")
    catalog.write_embeddings(store, "a", [0], HashEmbedder(384).embed(["x"]), "hash-384")
    for doc_id, model in (("a", HashEmbedder(256)), ("b", HashEmbedder(384))):
        vectors = model.embed(["x"])
        catalog.write_embeddings(store, doc_id, [0], vectors, model.model_name, PENDING)
    root = VectorIndex(connect(chroma_url), f"test-{uuid.uuid4().hex[:12]}")
    root.replace_document("a", "a.txt", [VectorRecord(0, 1, 0, 1)], HashEmbedder(384).embed(["x"]))

    assert ModelSwitch(store).tidy(root, _Pool()) == 3

    assert catalog.read_embeddings(store, "a")[2] == "hash-256"  # promoted
    assert not store.artifact_path(PENDING, "b").exists()  # another model's: removed
    assert not store.artifact_path(PENDING, "a").exists() and root.count() == 0
