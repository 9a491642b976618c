"""Every corpus file (retrieval/ aside) uploaded through the API reaches the right end.

Indexed, failed with the code the extraction tests expect, or rejected at the door; within a
bounded time; and the daemon, the API and Chroma are still healthy afterwards.
"""

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from reliability.audit import Scope, audit
from reliability.harness import FULL, Stack, healthy, request, wait_terminal
from support.corpus_tables import (
    EMPTY_TEXT_FILES,
    INTL_PDFS,
    PDFS,
    PROBLEM_PDFS,
    TEXT_FILES,
    files_in,
)

from bench.harness.results import ran_at

pytestmark = pytest.mark.reliability

# One of each outcome, all quick: the short version in `make test`.
SHORT = [
    "pdf/sf_minimal-document.pdf",
    "pdf/pypdf_r6-empty-password.pdf",
    "markdown/uns_umlauts-non-utf8.md",
    "text/uns_fake-text-utf-16.txt",
    "text/uns_empty.txt",
    "pdf_problem/uns_password.pdf",
    "pdf_problem/pdfjs_bug1020226.pdf",
    "pdf_problem/pdfjs_empty.pdf",
    "pdf_problem/pdfjs_helloworld-bad.pdf",
    "pdf_intl/pdfjs_vertical.pdf",
    "office/uns_docx-tables.docx",
    "scanned/tesstest_phototest.tif",
]

# Office, OpenDocument, EPUB, HTML and RTF files, images and scans (OCR): every one is indexed
# (tests/core/stages/extract/test_formats_corpus.py checks that each one's phrase is then found).
NEW_FORMAT_FOLDERS = ("office", "html", "scanned")


def expected_outcomes() -> dict[str, str]:
    """Corpus path -> `indexed`, `failed:<code>` or `rejected:<code>`, from the extraction
    tests' tables and the new formats' folders; files outside them (README.md,
    SOURCES.tsv, PHRASES.tsv) are plain text."""
    out = {rel: "indexed" for rel in TEXT_FILES}
    out.update({rel: "rejected:empty_file" for rel in EMPTY_TEXT_FILES})
    out.update({f"pdf/{name}": "indexed" for name in PDFS})
    for folder, table in (("pdf_problem", PROBLEM_PDFS), ("pdf_intl", INTL_PDFS)):
        for name, (code, _) in table.items():
            label = "indexed" if code == "ok" else f"failed:{code}"
            out[f"{folder}/{name}"] = "rejected:empty_file" if code == "empty_file" else label
    out.update(
        {
            f"{folder}/{name}": "indexed"
            for folder in NEW_FORMAT_FOLDERS
            for name in files_in(folder)
        }
    )
    out.update({name: "indexed" for name in ("README.md", "SOURCES.tsv", "PHRASES.tsv")})
    return out


def corpus_files(corpus: Path) -> list[str]:
    return sorted(
        str(p.relative_to(corpus))
        for p in corpus.rglob("*")
        if p.is_file() and p.relative_to(corpus).parts[0] != "retrieval"
    )


def outcome(doc: dict[str, Any]) -> str:
    if doc["status"] in ("failed", "rejected") and doc.get("error"):
        return f"{doc['status']}:{doc['error']['code']}"
    return str(doc["status"])


def test_every_corpus_file_reaches_its_expected_end(
    stack: Stack, corpus: Path, reliability_report: dict[str, Any]
) -> None:
    expected = expected_outcomes()
    files = corpus_files(corpus)
    assert set(files) == set(expected), "the expectations must cover the corpus exactly"
    files = files if FULL else SHORT
    actual: dict[str, str] = {}
    ids: dict[str, str] = {}
    with stack.client() as client:
        for rel in files:
            response = request(
                client,
                "POST",
                "/documents",
                files={"file": (Path(rel).name, (corpus / rel).read_bytes())},
            )
            assert response.status_code < 500, (rel, response.text)
            if response.status_code >= 400:
                actual[rel] = f"rejected:{response.json()['error']['code']}"
            else:
                ids[rel] = response.json()["documents"][0]["id"]
        bound = 1800 if FULL else 240
        reports, seconds = wait_terminal(client, set(ids.values()), timeout=bound)
        for rel, doc_id in ids.items():
            actual[rel] = outcome(reports[doc_id])
        state = audit(stack, client, Scope(frozenset(ids.values())))

    confusion = Counter(f"{expected[rel]} -> {actual[rel]}" for rel in files)
    wrong = {
        rel: f"expected {expected[rel]}, got {actual[rel]}"
        for rel in files
        if expected[rel] != actual[rel]
    }
    health = healthy(stack)
    reliability_report["corpus_sweep"] = {
        **ran_at(),
        "files": len(files),
        "seconds_to_all_terminal": round(seconds, 1),
        "bound_seconds": bound,
        "extraction_timeout_cpu_seconds": int(stack.env["RAG_EXTRACTION_TIMEOUT_SECONDS"]),
        "confusion": dict(sorted(confusion.items())),
        "wrong": wrong,
        "healthy_after": health,
        **state.to_dict(),
    }
    assert not wrong, wrong
    assert all(health.values()), health
    assert state.duplicates == 0 and not state.mismatched, state
    assert state.chroma_count == state.catalog_chunks_live
