"""The lexical analyzer, BM25 over per-document term files, and the fusion of two rankings."""

import os
import time
from pathlib import Path

import pytest

from rag_pipeline.core.retrieval.lexical import (
    LexicalIndex,
    publish_terms,
    terms_current,
    write_terms,
)
from rag_pipeline.core.retrieval.search import fuse, phrases_first, query_dense_weight, squash
from rag_pipeline.core.retrieval.terms import analyze, unspaced_share
from rag_pipeline.core.storage.data_dir import DocumentStore


def test_latin_words_are_folded_stemmed_and_stripped_of_stop_words() -> None:
    assert analyze("The Normans were RUNNING to Normandy's cafés") == [
        "norman",
        "were",
        "run",
        "normandi",
        "cafe",
    ]
    # Query and document forms meet whatever the inflection or accents.
    assert analyze("résumé") == analyze("Resume") == analyze("resumes")
    assert analyze("1973 oil crisis, U.S.") == ["1973", "oil", "crisi", "u", "s"]


def test_han_kana_and_hangul_become_character_bigrams() -> None:
    assert analyze("東京都に住む") == ["東京", "京都", "都に", "に住", "住む"]
    assert analyze("한국어 텍스트") == ["한국", "국어", "텍스", "스트"]
    # A single character stands alone; a run ends at Latin text, which is analysed as words.
    assert analyze("日 Tokyo タワー") == ["日", "tokyo", "タワ", "ワー"]
    # Latin text glued to kana is split at the script change, and kana keep their voicing marks.
    assert analyze("Javaプログラミング") == ["java", "プロ", "ログ", "グラ", "ラミ", "ミン", "ング"]
    # Half-width katakana is normalised, so it meets its full-width form.
    assert analyze("ｶﾀｶﾅ") == analyze("カタカナ")


def test_unspaced_share_measures_what_the_model_cannot_read() -> None:
    assert unspaced_share("plain English") == 0.0
    assert unspaced_share("日本語のテキスト") == 1.0
    assert unspaced_share("東京 in Tokyo") == pytest.approx(2 / 9)
    assert unspaced_share("?!") == 0.0


def _publish(store: DocumentStore, doc_id: str, chunks: list[str]) -> None:
    write_terms(store, doc_id, list(enumerate(chunks)))
    publish_terms(store, doc_id)


def test_bm25_ranks_the_chunk_that_holds_the_rare_terms_first(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    _publish(store, "oil", ["The oil crisis began in October 1973.", "Prices rose fourfold."])
    _publish(store, "fish", ["Salmon swim upstream in October.", "Oil of salmon is sold."])
    _publish(store, "kyoto", ["京都は日本の古い都です。", "東京は首都です。"])
    lexicon = LexicalIndex(store)

    hits = lexicon.query("When did the oil crisis begin?", 5)
    assert [(h.document_id, h.chunk_no) for h in hits[:2]] == [("oil", 0), ("fish", 1)]
    assert hits[0].score > hits[1].score > 0
    best = lexicon.query("古い都", 5)[0]
    assert (best.document_id, best.chunk_no) == ("kyoto", 0)
    assert lexicon.query("zebra", 5) == []
    assert lexicon.chunk_count == 6


def test_deleting_and_replacing_a_document_updates_lexical_search(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    _publish(store, "a", ["alpha beta", "gamma delta"])
    _publish(store, "b", ["beta epsilon"])
    lexicon = LexicalIndex(store)
    assert {h.document_id for h in lexicon.query("beta", 10)} == {"a", "b"}

    # Deleting a document removes its published terms: it leaves search at once.
    store.artifact_path("lexical", "a").unlink()
    assert {h.document_id for h in lexicon.query("beta", 10)} == {"b"}
    assert lexicon.query("gamma", 10) == []
    assert lexicon.chunk_count == 1

    # Replacing one swaps its terms; statistics follow (no stale document frequencies).
    _publish(store, "b", ["zeta eta", "theta"])
    assert lexicon.query("beta", 10) == []
    assert [(h.document_id, h.chunk_no) for h in lexicon.query("theta", 10)] == [("b", 1)]
    assert lexicon.chunk_count == 2
    assert lexicon.document_ids() == {"b"}


def test_terms_written_but_not_published_are_not_searchable(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    write_terms(store, "draft", [(0, "unpublished words")])
    assert terms_current(store, "draft")
    assert LexicalIndex(store).query("unpublished", 5) == []
    assert not terms_current(store, "missing")


def test_many_documents_merge_into_few_segments_and_stay_correct(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    lexicon = LexicalIndex(store)
    for n in range(40):
        _publish(store, f"doc{n:02d}", [f"common words and token{n}", f"other text {n}"])
        # Each refresh adds a segment; merging keeps their number bounded.
        assert lexicon.query(f"token{n}", 1)[0].document_id == f"doc{n:02d}"
    assert len(lexicon._segments) <= 9
    for n in range(0, 40, 2):
        store.artifact_path("lexical", f"doc{n:02d}").unlink()
    hits = lexicon.query("common", 100)
    assert sorted(h.document_id for h in hits) == [f"doc{n:02d}" for n in range(1, 40, 2)]
    assert lexicon.chunk_count == 40


def test_a_changed_folder_is_noticed_within_the_same_second(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    _publish(store, "first", ["one"])
    lexicon = LexicalIndex(store)
    assert lexicon.query("one", 5)
    folder = store.catalog_dir / "lexical"
    stamp = folder.stat().st_mtime_ns
    _publish(store, "second", ["two"])
    # Even if the filesystem gave the folder the same timestamp, the new file is seen.
    os.utime(folder, ns=(stamp, stamp))
    assert [h.document_id for h in lexicon.query("two", 5)] == ["second"]


def test_a_settled_unchanged_folder_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-query cost is one stat of the folder, not a listing, once nothing changes."""
    store = DocumentStore(tmp_path)
    _publish(store, "first", ["one"])
    folder = store.catalog_dir / "lexical"
    settled = time.time_ns() - 60 * 10**9
    os.utime(folder, ns=(settled, settled))
    lexicon = LexicalIndex(store)
    assert lexicon.query("one", 5)
    listings = []
    real_scandir = os.scandir
    monkeypatch.setattr(
        "rag_pipeline.core.retrieval.lexical.os.scandir",
        lambda p: listings.append(p) or real_scandir(p),
    )
    for _ in range(3):
        assert lexicon.query("one", 5)
    assert listings == []
    _publish(store, "second", ["two"])
    assert [h.document_id for h in lexicon.query("two", 5)] == ["second"]
    assert len(listings) == 1


def test_fusion_weighs_normalised_scores_and_keeps_chunks_from_either_list() -> None:
    dense = [(("d", 0), 0.9), (("d", 1), 0.5), (("d", 2), 0.1)]
    lexical = [(("d", 2), 12.0), (("d", 3), 6.0), (("d", 0), 0.0)]
    fused = fuse(dense, lexical, dense_weight=0.5)
    assert [key for key, _ in fused] == [("d", 0), ("d", 2), ("d", 1), ("d", 3)]
    assert dict(fused)[("d", 0)] == pytest.approx(0.5)
    assert dict(fused)[("d", 2)] == pytest.approx(0.5)
    # The weight moves the balance all the way to either side.
    assert [k for k, _ in fuse(dense, lexical, 1.0)][:3] == [("d", 0), ("d", 1), ("d", 2)]
    assert [k for k, _ in fuse(dense, lexical, 0.0)][:2] == [("d", 2), ("d", 3)]
    assert fuse([], lexical, 0.5)[0][0] == ("d", 2)
    assert fuse([], [], 0.5) == []


def test_a_list_whose_scores_are_all_equal_counts_fully_in_fusion() -> None:
    # One hit, or hits that tie: nothing to spread over [0, 1], so each is the list's best.
    dense = [(("d", 0), 0.3), (("d", 1), 0.3)]
    lexical = [(("d", 1), 4.0)]
    assert fuse(dense, lexical, dense_weight=0.25) == [
        (("d", 1), pytest.approx(1.0)),
        (("d", 0), pytest.approx(0.25)),
    ]


def test_cjk_queries_lean_on_lexical_scores() -> None:
    assert query_dense_weight("oil crisis", 0.5) == 0.5
    assert query_dense_weight("東京都に住む", 0.5) == 0.0
    assert 0.0 < query_dense_weight("東京 Tokyo tower", 0.5) < 0.5
    # A multilingual model reads Japanese: its dense side keeps its weight.
    assert query_dense_weight("東京都に住む", 0.5, multilingual=True) == 0.5


def test_chunks_holding_the_query_verbatim_move_first_in_their_order() -> None:
    ranked = [(("d", 0), 0.9), (("d", 1), 0.8), (("d", 2), 0.7), (("d", 3), 0.6)]
    texts = {
        ("d", 0): "배우는 Rust 프로그래밍, 배우는 프로그래밍",
        ("d", 1): "30일 만에 배우는\n프로그래밍",
        ("d", 2): "nothing here",
        ("d", 3): "만에  배우는 프로그래밍 again",
    }
    reordered = phrases_first("만에 배우는 프로그래밍", ranked, texts)
    assert [key for key, _ in reordered] == [("d", 1), ("d", 3), ("d", 0), ("d", 2)]
    assert dict(reordered) == dict(ranked), "scores are kept"
    assert squash("Ｆｕｌｌ  WIDTH\tText") == "full width text"
