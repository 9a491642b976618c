"""The latency benchmark's floor: notes extracted, chunked, embedded, upserted into a Chroma
collection on the stack's server and found by a search, in this one warm process, with no
Dagster."""

import random
import statistics
import time
import uuid
from typing import Any

import numpy as np

from bench.harness.stack import MODEL
from bench.latency.notes import nonsense, note

FLOOR_REPEATS = 5


def floor(chroma_url: str, rng: random.Random, burst: int) -> dict[str, Any]:
    """Seconds from bytes to found, in one warm plain process: one note at a time, and a
    burst of them together (each extracted and chunked, one embedding call, then upserts
    and searches)."""
    from rag_pipeline.core.retrieval.vector_index import connect
    from rag_pipeline.core.stages.chunking import chunk_pages, load_tokenizer
    from rag_pipeline.core.stages.embedders import get_embedder
    from rag_pipeline.core.stages.extract import extract

    embedder = get_embedder(MODEL)
    # A few short texts at a time: one thread is fastest, and on a busy machine two contend
    # (the API embeds its queries on one thread for the same reason, see rag_api/deps.py).
    embedder.use_threads(1)
    embedder.embed_documents(["warm up"])
    tokenizer = load_tokenizer(embedder.tokenizer_path)
    client = connect(chroma_url)
    collection = client.get_or_create_collection(
        f"bench-floor-{uuid.uuid4().hex[:8]}",
        configuration={"hnsw": {"space": "cosine"}},
        embedding_function=None,
    )

    def chunks_of(word: str) -> list[str]:
        name, data = note(word)
        extracted = extract(data, name)
        pages = [(p.number, p.text) for p in extracted.pages]
        chunks = chunk_pages(name, pages, tokenizer, max_tokens=embedder.max_tokens)
        return [c.text for c in chunks]

    def found(word: str) -> bool:
        query = np.asarray([embedder.embed_query(word)], dtype=np.float32)
        hits = collection.query(
            query_embeddings=query, n_results=1, where_document={"$contains": word}
        )
        return bool(hits["ids"][0]) and hits["ids"][0][0].startswith(f"{word}:")

    def upsert(word: str, texts: list[str], vectors: Any) -> None:
        collection.upsert(
            ids=[f"{word}:{n}" for n in range(len(texts))],
            embeddings=np.asarray(vectors, dtype=np.float32),
            documents=texts,
        )

    found(nonsense(rng))  # the first query of a collection pays for opening it
    solo = []
    for _ in range(FLOOR_REPEATS):
        word = nonsense(rng)
        started = time.perf_counter()
        texts = chunks_of(word)
        upsert(word, texts, embedder.embed_documents(texts))
        if not found(word):
            raise RuntimeError(f"the floor did not find {word}")
        solo.append(time.perf_counter() - started)
    bursts = []
    for _ in range(FLOOR_REPEATS):
        words = [nonsense(rng) for _ in range(burst)]
        started = time.perf_counter()
        per_word = [chunks_of(word) for word in words]
        vectors = embedder.embed_documents([t for texts in per_word for t in texts])
        at = 0
        for word, texts in zip(words, per_word, strict=True):
            upsert(word, texts, vectors[at : at + len(texts)])
            at += len(texts)
        if not all(found(word) for word in words):
            raise RuntimeError("the floor did not find every burst document")
        bursts.append(time.perf_counter() - started)
    client.delete_collection(collection.name)
    return {
        "solo_seconds": [round(s, 4) for s in solo],
        "solo_p50_seconds": round(statistics.median(solo), 4),
        # Medians of FLOOR_REPEATS: the machine is shared, and one slow repeat is not the floor.
        "burst_seconds": round(statistics.median(bursts), 4),
    }
