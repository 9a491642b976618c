"""The switch's embedding of a document: into pending_embeddings with the new model, never the
document's own embeddings; a document whose chunks the new model cannot take whole fails."""

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
