"""Asset checks, evaluated per document inside the ingestion step.

Checks run where the data is: Dagster's own check steps would be separate steps, which a range
run skips wholesale when one document fails upstream (see DESIGN.md, decision 2).
"""

from typing import Any

from dagster import AssetCheckEvaluation, AssetCheckSeverity, AssetCheckSpec, AssetKey

from rag_pipeline.core.stages.extract import GARBLED_FAIL_SHARE, LOW_CONFIDENCE

# Text with more garbage than this is searchable but suspect: warn, don't fail.
GARBLED_WARN_SHARE = 0.05

CHECK_SPECS = [
    AssetCheckSpec(
        "text_is_readable",
        asset="document_text",
        description=(
            "Text is non-empty, mostly free of mojibake or glyph-name tokens, and every page "
            "OCR read was read with confidence."
        ),
    ),
    AssetCheckSpec(
        "embedding_dimension",
        asset="chunk_embeddings",
        description="Every vector has the model's dimension and unit length.",
    ),
    AssetCheckSpec(
        "vectors_match_chunks",
        asset="vector_index",
        description="The index holds exactly one vector per chunk of the document.",
    ),
]


def _evaluation(
    asset: str, name: str, partition: str, passed: bool, severity: AssetCheckSeverity, **meta: Any
) -> AssetCheckEvaluation:
    return AssetCheckEvaluation(
        asset_key=AssetKey(asset),
        check_name=name,
        passed=passed,
        metadata=meta,
        severity=severity,
        partition=partition,
    )


def text_is_readable(
    partition: str, chars: int, garbled: float, low_confidence_pages: list[int]
) -> AssetCheckEvaluation:
    """Warns for mojibake and glyph names, and for pages OCR read with low confidence."""
    return _evaluation(
        "document_text",
        "text_is_readable",
        partition,
        chars > 0 and garbled <= GARBLED_WARN_SHARE and not low_confidence_pages,
        AssetCheckSeverity.WARN,
        chars=chars,
        garbled_share=garbled,
        warn_above=GARBLED_WARN_SHARE,
        fail_above=GARBLED_FAIL_SHARE,
        ocr_low_confidence_pages=low_confidence_pages,
        ocr_confidence_below=LOW_CONFIDENCE,
    )


def embedding_dimension(
    partition: str, dimension: int, expected: int, min_norm: float
) -> AssetCheckEvaluation:
    return _evaluation(
        "chunk_embeddings",
        "embedding_dimension",
        partition,
        dimension == expected and abs(min_norm - 1.0) < 1e-3,
        AssetCheckSeverity.ERROR,
        dimension=dimension,
        expected=expected,
        min_norm=min_norm,
    )


def vectors_match_chunks(partition: str, vectors: int, chunks: int) -> AssetCheckEvaluation:
    return _evaluation(
        "vector_index",
        "vectors_match_chunks",
        partition,
        vectors == chunks,
        AssetCheckSeverity.ERROR,
        vectors_in_index=vectors,
        chunks=chunks,
    )
