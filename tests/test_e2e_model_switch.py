"""Issue 26's acceptance, with the real models: a collection of the corpus's Japanese, Korean
and Chinese documents, embedded by all-MiniLM-L6-v2, is switched to multilingual-e5-small while
it is searched. Every search answers, from the old generation until the swap and the new one
after; then dense search finds paraphrased CJK questions (bench/eval/cjk_questions.tsv) it did
not find before, and each document's embedding stage names the new model, as the Dagster UI
shows it. The switch's backfill runs in process, a range at a time, as the daemon runs it.
"""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.api import upload
from support.runs import ingest_landed, materialize

from bench.eval.questions import load
from rag_api.main import create_app
from rag_pipeline.core.stages.embedders.e5 import E5_MODEL
from rag_pipeline.settings import Settings

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
# The eight documents most of the questions are about, of every CJK script and of PDF, HTML,
# RTF, spreadsheet and legacy-encoded text; the rest of the set is the eval's (make eval).
DOCUMENTS = {
    "pdf_intl/plumber_issue-67-example.pdf",
    "pdf_intl/uns_korean-text-with-tables.pdf",
    "html/readability_qq.html",
    "html/readability_yahoo-4.html",
    "office/tika_testRTFJapanese.rtf",
    "office/tika_testEXCEL_phonetic.xlsx",
    "text/chardet_euc-kr_korean.txt",
    "text/chardet_shift_jis_rashomon.txt",
}
QUESTIONS = [q for q in load() if q["document"] in DOCUMENTS]
K = 1
# Documents per run of the switch's backfill: two runs, so search is asked mid-switch too.
BATCH = 4


def _found(client: TestClient) -> set[str]:
    """The ids of the questions whose document dense search ranks in its top K."""
    found = set()
    for q in QUESTIONS:
        hits = client.get("/search", params={"q": q["question"], "mode": "dense", "k": K})
        assert hits.status_code == 200, hits.text
        if Path(q["document"]).name in {h["filename"] for h in hits.json()["results"]}:
            found.add(q["id"])
    return found


@pytest.fixture()
def client(real_model: dict[str, str], instance: object) -> TestClient:
    settings = Settings(
        data_dir=Path(real_model["RAG_DATA_DIR"]),
        chroma_url=real_model["RAG_CHROMA_URL"],
        chroma_collection=real_model["RAG_CHROMA_COLLECTION"],
        embedding_model=MINILM,
    )
    with TestClient(create_app(settings, instance)) as test_client:
        yield test_client


def test_a_collection_switched_to_e5_while_searched_then_finds_cjk_paraphrases(
    client: TestClient, instance, real_model: dict[str, str], corpus: Path
) -> None:
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

    assert isinstance(instance, DagsterInstance)
    files = [upload(corpus, rel, Path(rel).name) for rel in sorted(DOCUMENTS)]
    docs = client.post("/documents", files=files).json()["documents"]
    ingest_landed(instance, real_model["RAG_DATA_DIR"])
    ids = [d["id"] for d in docs]
    assert {client.get(f"/documents/{i}").json()["status"] for i in ids} == {"indexed"}
    before = _found(client)

    started = client.patch("/collections/default", json={"embedding_model": E5_MODEL})
    assert started.status_code == 202, started.text
    backfill = max(
        (b for b in instance.get_backfills() if "rag/model-switch" in b.tags),
        key=lambda b: b.backfill_timestamp,
    )
    tags = {k: v for k, v in backfill.tags.items() if k.startswith("rag/")}
    order = list(instance.get_dynamic_partitions("documents"))
    keys = sorted(set(ids), key=order.index)
    for start in range(0, len(keys), BATCH):
        # Searched between the backfill's runs, every search answers, and from the old
        # generation alone: the same documents as before the switch began.
        assert client.get("/collections/default").json()["embedding_model"] == MINILM
        assert _found(client) == before
        result = materialize(
            instance, keys[start : start + BATCH], ["chunk_embeddings", "vector_index"], tags
        )
        assert result.success

    after = client.get("/collections/default").json()
    assert (after["embedding_model"], after["model_switch"]) == (E5_MODEL, None)
    found = _found(client)
    newly = found - before
    # Seen at 27 of 57 before and 55 after (bench/results/cjk_questions.json has the whole
    # set at hit@5: 0.647 with MiniLM, 0.926 with e5).
    assert len(found) > len(before) and len(newly) >= 20, (sorted(before), sorted(found))
    for doc_id in ids:
        report = client.get(f"/documents/{doc_id}").json()
        assert report["status"] == "indexed"
        assert report["stages"]["chunk_embeddings"]["metadata"]["model"] == E5_MODEL
        # What the Dagster UI shows: the partition's latest materialization and its metadata.
        [latest] = instance.fetch_materializations(
            AssetRecordsFilter(AssetKey("chunk_embeddings"), asset_partitions=[doc_id]),
            limit=1,
            ascending=False,
        ).records
        assert latest.asset_materialization is not None
        assert latest.asset_materialization.metadata["model"].value == E5_MODEL
