"""Every document is bounded: each attack of issue 24, as a small file made here, ends as that
document's own failure (or its text, capped), with the extraction child's peak memory measured
by the kernel (support/measured.py) under the limit the test sets."""

import io
import os
import signal
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest
from support import hostile
from support.extraction import (
    assert_no_child_left,
    assert_readable_message,
    extend_forever,
    forkserver_children,
    hoard,
    hoard_then_crash,
)
from support.measured import measured

from rag_pipeline.core.stages.extract import ExtractionError, ExtractionLimits, extract, sandbox
from rag_pipeline.core.stages.extract.formats.pdf import render_scale
from rag_pipeline.core.stages.extract.layout import reading
from rag_pipeline.core.stages.extract.sandbox import run_bounded
from rag_pipeline.core.stages.extract.sniff import sniff_media_type

MEMORY_MB = 512


def in_fresh_process(tmp_path: Path, name: str, data: bytes, **limits: Any) -> dict[str, Any]:
    """`extract_document` of the file in a fresh process, with the memory limit and `limits`;
    the outcome and the extraction child's peak resident set."""
    path = tmp_path / name
    path.write_bytes(data)
    limits = {"memory_mb": MEMORY_MB, **limits}
    outcome = measured({"kind": "extract", "path": str(path), "filename": name, "limits": limits})
    assert 0 < outcome["peak_rss_mb"] < limits["memory_mb"], outcome
    return outcome


@pytest.mark.stack
def test_a_docx_whose_xml_inflates_to_1_gb_is_refused_before_any_parser(tmp_path: Path) -> None:
    data = hostile.docx_bomb()
    assert len(data) < 1.5 * hostile.MB
    outcome = in_fresh_process(tmp_path, "bomb.docx", data)
    assert outcome["code"] == "too_large", outcome
    assert "'word/document.xml' inflates 1,010 times" in outcome["message"]
    assert "RAG_MAX_ZIP_RATIO" in outcome["message"]


def test_a_central_directory_that_lies_is_caught_while_inflating() -> None:
    """The headers claim 4 KB for an entry that inflates to 1 GB: neither the declared size
    nor the declared ratio gives it away, so only counting while inflating can."""
    data = hostile.docx_bomb(lying=True)
    loose = ExtractionLimits(max_zip_ratio=1_000_000, max_inflated_mb=64)
    with pytest.raises(ExtractionError) as caught:
        extract(data, "lying.docx", limits=loose)
    assert caught.value.code == "too_large"
    assert str(caught.value) == (
        "the archive inflates to more than the limit of 64 MB (RAG_MAX_INFLATED_MB)"
    )
    with pytest.raises(ExtractionError) as caught:
        extract(data, "lying.docx")
    assert caught.value.code == "too_large" and "RAG_MAX_ZIP_RATIO" in str(caught.value)


@pytest.mark.stack
def test_an_odt_asking_for_a_billion_spaces_is_read_with_a_few(tmp_path: Path) -> None:
    data = hostile.odt_spaces(1_000_000_000)
    assert len(data) < 400
    outcome = in_fresh_process(tmp_path, "spaces.odt", data)
    assert outcome["code"] == "ok", outcome
    assert outcome["text"] == "Spaced" + " " * 64 + "out"


@pytest.mark.stack
def test_an_xlsx_with_a_1_mb_string_in_300_cells_is_too_large(tmp_path: Path) -> None:
    """Cells are counted as they are read: counting the text once it is whole would first
    copy the string into every cell (300 MB, past a 256 MB limit)."""
    data = hostile.xlsx_shared_string(cells=300, chars=1_000_000)
    assert len(data) < 5000
    outcome = in_fresh_process(tmp_path, "shared.xlsx", data, memory_mb=256)
    assert outcome["code"] == "too_large", outcome
    assert outcome["message"] == (
        "the text is longer than the limit of 10,000,000 characters (RAG_MAX_DOCUMENT_CHARS)"
    )


@pytest.mark.stack
def test_a_tiff_of_150_frames_is_decoded_a_frame_at_a_time(tmp_path: Path) -> None:
    """150 frames of 16 megapixels, 2.4 GB decoded together; the first one has text."""
    data = hostile.tiff_frames(150, 4000, "Hostile frames")
    assert len(data) < 300 * 1024
    outcome = in_fresh_process(tmp_path, "frames.tif", data)
    assert outcome["code"] == "ok", outcome
    assert outcome["pages"] == 150 and outcome["text"].startswith("Hostile frames")


def test_pages_past_the_limit_are_refused_before_any_is_decoded() -> None:
    data = hostile.tiff_frames(150, 4000, "Hostile frames")
    with pytest.raises(ExtractionError) as caught:
        extract(data, "frames.tif", limits=ExtractionLimits(max_pages=100))
    assert caught.value.code == "too_large"
    assert str(caught.value) == "the file has 150 pages, more than the limit of 100 (RAG_MAX_PAGES)"


@pytest.mark.stack
def test_a_pdf_page_of_5_metres_is_rendered_for_ocr_within_the_pixel_bound(
    tmp_path: Path,
) -> None:
    """At 300 dpi the page would be 60,000 pixels square (3.6 gigapixels): it is rendered at
    the resolution that fits the bound, and OCR reads it (finding no text in a black square)."""
    data = hostile.pdf_huge_page(14400)
    assert len(data) < 500
    assert render_scale(14400, 14400, 4_000_000) * 14400 == pytest.approx(2000)
    assert render_scale(612, 792, 50_000_000) == 300 / 72  # a Letter page keeps 300 dpi
    outcome = in_fresh_process(tmp_path, "huge.pdf", data, max_megapixels=4)
    assert outcome["code"] == "no_text_layer", outcome
    assert outcome["message"] == "no text layer, and OCR found no text on 1 page that look scanned"


@pytest.mark.stack
def test_a_144_megapixel_png_is_refused_from_its_header(tmp_path: Path) -> None:
    data = hostile.png_of(12000)
    assert len(data) < 40 * 1024
    outcome = in_fresh_process(tmp_path, "huge.png", data)
    assert outcome["code"] == "too_large", outcome
    assert outcome["message"] == (
        "an image of 12,000 x 12,000 pixels (144 megapixels) is above the limit of 50 "
        "megapixels (RAG_MAX_IMAGE_MEGAPIXELS)"
    )


def test_a_child_out_of_memory_fails_its_document_naming_the_limit() -> None:
    with pytest.raises(ExtractionError) as caught:
        run_bounded(hoard, b"2048", "hoard.bin", 30, ExtractionLimits(memory_mb=256))
    assert caught.value.code == "resource_limit"
    assert str(caught.value) == (
        "reading the file needed more than the 256 MB of memory a document may use "
        "(RAG_EXTRACT_MEMORY_MB)"
    )
    assert_readable_message(caught.value)
    assert_no_child_left()


def test_a_crash_at_the_memory_limit_is_memory_not_damage() -> None:
    """A reader in C that crashes when an allocation fails: SIGSEGV with the address space
    near its limit is `resource_limit` (far from it, a crash is the file's damage: see
    test_sandbox)."""
    with pytest.raises(ExtractionError) as caught:
        run_bounded(hoard_then_crash, b"230", "crash.bin", 30, ExtractionLimits(memory_mb=256))
    assert caught.value.code == "resource_limit"
    assert "SIGSEGV" in str(caught.value) and "256 MB (RAG_EXTRACT_MEMORY_MB)" in str(caught.value)
    assert_no_child_left()


@pytest.mark.slow
def test_ocr_extensions_stop_at_the_documents_total_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A document asking for an hour, a page of OCR at a time, gets its 3 s budget.

    The budget is processor time; the wall-clock backstop (twice the budget) is moved out of
    its way, so a loaded machine cannot end the child first with the backstop's message."""
    monkeypatch.setattr(sandbox, "_WALL_FACTOR", 10)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            run_bounded(extend_forever, b"", "scan.pdf", 1, ExtractionLimits(budget_s=3))
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():
        for pid, _ in forkserver_children():  # or it would compute for two hours
            os.kill(pid, signal.SIGKILL)
        pytest.fail("the budget did not end the extraction")
    err = outcome[0]
    assert isinstance(err, ExtractionError) and err.code == "extraction_timeout"
    assert str(err) == (
        "text extraction used up its total budget of 3 s (RAG_EXTRACTION_BUDGET_SECONDS)"
    )
    assert_no_child_left()


def test_memory_errors_are_not_mistaken_for_damage() -> None:
    with pytest.raises(MemoryError), reading("Word document"):
        raise MemoryError


def test_sniffing_refuses_an_absurd_directory_without_parsing_it() -> None:
    """The end record claims 50 MB of central directory (a million entries): zipfile would
    read it all; sniffing reads the 22-byte record and stops."""
    entries, size = (1).to_bytes(2, "little"), (50 * hostile.MB).to_bytes(4, "little")
    record = b"PK\x05\x06" + bytes(6) + entries + size + bytes(6)
    data = b"PK\x03\x04" + bytes(100) + record
    with pytest.raises(ExtractionError) as caught:
        sniff_media_type(data, "huge.docx")
    assert caught.value.code == "too_large"
    assert "more than the limit of 65,535" in str(caught.value)
    assert_readable_message(caught.value)


def test_an_entry_compressed_as_no_office_file_is_refused(tmp_path: Path) -> None:
    """zipfile inflates bzip2 and LZMA a block at a time without a bound on the block."""
    source = zipfile.ZipFile(io.BytesIO(hostile.good_docx("Fine words.")))
    target = tmp_path / "bzip2.docx"
    with source, zipfile.ZipFile(target, "w", zipfile.ZIP_BZIP2) as archive:
        for info in source.infolist():
            archive.writestr(info.filename, source.read(info))
    with pytest.raises(ExtractionError) as caught:
        extract(target.read_bytes(), "bzip2.docx")
    assert caught.value.code == "damaged_document"
    assert "compression method (12)" in str(caught.value)
    assert "Fine words." in extract(hostile.good_docx("Fine words."), "good.docx").text
