"""Extraction of every new format and OCR, against the bare library call in the same process.

    python -m bench formats [--limit N] [--repeat 3]      # `make bench` runs it with the others

For every file of the corpus's office/, html/ and scanned/ folders (PHRASES.tsv names them):
- seconds per page and per MB through `extract_document` (the sandbox, as ingestion reads a
  document), against the floor: the format's library called directly in this process, with no
  sandbox, structure, tables or normalisation (for OCR: the page rendered or opened, and one
  English Tesseract pass over it). Ratio = floor seconds / pipeline seconds, per format;
- the share of PHRASES.tsv phrases found in the extracted text (white space ignored, since line
  wrapping and CJK spacing make it arbitrary), per format and, for scans, per OCR language;
- of the OCR'd pages, the share that reads as words by the readability check (confidence at
  least LOW_CONFIDENCE and garbled share at most the check's warning share), by pages and by
  characters;
- the two scanned PDFs rendered at 200 and 300 dpi: confidence and seconds per page, which is
  how RENDER_DPI was chosen.

`--limit N` takes the first N files of each format (a quick check); results go to
bench/results/formats.json and formats.png.
"""

import io
import json
import statistics
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import corpus
from bench.harness.command import arguments
from bench.harness.results import pyplot, save_chart, write_json

FORMATS = {
    ".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx", ".odt": "odt", ".epub": "epub",
    ".html": "html", ".rtf": "rtf", ".pdf": "ocr: pdf", ".png": "ocr: image",
    ".jpg": "ocr: image", ".jpeg": "ocr: image", ".tif": "ocr: image",
}  # fmt: skip
READABLE_GARBLED = 0.05  # checks.GARBLED_WARN_SHARE, without importing Dagster


def floor_docx(data: bytes) -> str:
    import docx

    document = docx.Document(io.BytesIO(data))
    cells = [c.text for t in document.tables for r in t.rows for c in r.cells]
    return "\n".join([*(p.text for p in document.paragraphs), *cells])


def floor_pptx(data: bytes) -> str:
    import pptx

    deck = pptx.Presentation(io.BytesIO(data))
    return "\n".join(
        shape.text_frame.text
        for slide in deck.slides
        for shape in slide.shapes
        if shape.has_text_frame
    )


def floor_xlsx(data: bytes) -> str:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    rows = [
        " ".join(str(v) for v in row if v is not None)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
    ]
    book.close()
    return "\n".join(rows)


def floor_odt(data: bytes) -> str:
    from lxml import etree

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "".join(etree.fromstring(archive.read("content.xml")).itertext())


def floor_epub(data: bytes) -> str:
    import ebooklib
    from ebooklib import epub
    from lxml import html

    book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
    return "\n".join(
        html.fromstring(item.get_content()).text_content()
        for item in book.get_items_of_type(ebooklib.ITEM_DOCUMENT)
        if item.get_content().strip()
    )


def floor_html(data: bytes) -> str:
    import trafilatura

    return trafilatura.extract(data) or ""


def floor_rtf(data: bytes) -> str:
    from striprtf.striprtf import rtf_to_text

    return str(rtf_to_text(data.decode("latin-1")))


def ocr_images(data: bytes, pdf: bool, dpi: int = 300) -> list[Any]:
    from PIL import Image, ImageSequence

    if pdf:
        import pypdfium2

        document = pypdfium2.PdfDocument(data)
        return [page.render(scale=dpi / 72, grayscale=True).to_pil() for page in document]
    return [frame.copy() for frame in ImageSequence.Iterator(Image.open(io.BytesIO(data)))]


def floor_ocr(data: bytes, pdf: bool) -> str:
    import pytesseract

    return "\n".join(pytesseract.image_to_string(im, lang="eng") for im in ocr_images(data, pdf))


FLOORS: dict[str, Callable[[bytes], str]] = {
    "docx": floor_docx, "pptx": floor_pptx, "xlsx": floor_xlsx, "odt": floor_odt,
    "epub": floor_epub, "html": floor_html, "rtf": floor_rtf,
    "ocr: pdf": lambda data: floor_ocr(data, pdf=True),
    "ocr: image": lambda data: floor_ocr(data, pdf=False),
}  # fmt: skip


def words(text: str) -> str:
    return "".join(text.split())


def timed(read: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = read()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def measure(rows: list[tuple[str, str, str]], repeat: int) -> list[dict[str, Any]]:
    import os

    from rag_pipeline.core.stages.extract import LOW_CONFIDENCE, extract_document, garbled_share

    # The floor's Tesseract runs on one thread, as the pipeline's does.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    out = []
    for rel, phrase, language in rows:
        data = corpus.path(rel).read_bytes()
        kind = FORMATS[Path(rel).suffix.lower()]
        runs = 1 if kind.startswith("ocr") else repeat  # OCR is slow and steady
        floor_s, _ = timed(lambda kind=kind, data=data: FLOORS[kind](data), runs)
        pipeline_s, result = timed(
            lambda data=data, rel=rel: extract_document(data, Path(rel).name), runs
        )
        row: dict[str, Any] = {
            "file": rel,
            "format": kind,
            "language": language,
            "bytes": len(data),
            "pages": result.page_count,
            "floor_s": round(floor_s, 4),
            "pipeline_s": round(pipeline_s, 4),
            "phrase_found": words(phrase) in words(result.text),
        }
        if result.ocr is not None:
            pages = {page.number: page.text for page in result.pages}
            readable = [
                confidence >= LOW_CONFIDENCE and garbled_share(pages[n]) <= READABLE_GARBLED
                for n, confidence in zip(result.ocr.pages, result.ocr.confidence, strict=True)
            ]
            row |= {
                "ocr_pages": len(result.ocr.pages),
                "ocr_confidence": list(result.ocr.confidence),
                "ocr_languages": list(result.ocr.languages),
                "ocr_readable_pages": sum(readable),
                "ocr_chars": sum(len(pages[n]) for n in result.ocr.pages),
                "ocr_readable_chars": sum(
                    len(pages[n]) for n, ok in zip(result.ocr.pages, readable, strict=True) if ok
                ),
            }
        print(
            f"{rel}: {pipeline_s:.3f} s ({floor_s:.3f} s floor), "
            f"phrase {'found' if row['phrase_found'] else 'MISSING'}",
            flush=True,
        )
        out.append(row)
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_format: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_language: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        by_format[row["format"]].append(row)
        if row["format"].startswith("ocr"):
            by_language[row["language"]].append(row["phrase_found"])
    formats = {}
    for kind, group in sorted(by_format.items()):
        pages = sum(r["pages"] for r in group)
        megabytes = sum(r["bytes"] for r in group) / 1e6
        floor = sum(r["floor_s"] for r in group)
        pipeline = sum(r["pipeline_s"] for r in group)
        formats[kind] = {
            "files": len(group),
            "pages": pages,
            "pipeline_s_per_page": round(pipeline / pages, 4),
            "floor_s_per_page": round(floor / pages, 4),
            "pipeline_s_per_mb": round(pipeline / megabytes, 3),
            "floor_s_per_mb": round(floor / megabytes, 3),
            "ratio": round(floor / pipeline, 3),
            "phrases_found": round(sum(r["phrase_found"] for r in group) / len(group), 3),
        }
    ocr = [r for r in rows if "ocr_pages" in r]
    ocr_pages = sum(r["ocr_pages"] for r in ocr)
    ocr_chars = sum(r["ocr_chars"] for r in ocr)
    return {
        "formats": formats,
        "phrases_found_by_ocr_language": {
            language: round(sum(found) / len(found), 3)
            for language, found in sorted(by_language.items())
        },
        "ocr_readable_share_of_pages": (
            round(sum(r["ocr_readable_pages"] for r in ocr) / ocr_pages, 3) if ocr_pages else None
        ),
        "ocr_readable_share_of_chars": (
            round(sum(r["ocr_readable_chars"] for r in ocr) / ocr_chars, 3) if ocr_chars else None
        ),
        "ocr_seconds_per_page": (
            round(sum(r["pipeline_s"] for r in ocr) / ocr_pages, 3) if ocr_pages else None
        ),
    }


def render_dpi(files: list[str]) -> dict[str, dict[str, float]]:
    """Mean confidence and seconds per page of an English pass at 200 and 300 dpi."""
    from rag_pipeline.core.stages.extract.formats.ocr import OcrOptions, read_page

    out = {}
    for dpi in (200, 300):
        confidences, seconds = [], []
        for rel in files:
            for image in ocr_images(corpus.path(rel).read_bytes(), pdf=True, dpi=dpi):
                started = time.perf_counter()
                page = read_page(image, OcrOptions(("eng",)))
                seconds.append(time.perf_counter() - started)
                confidences.append(page.confidence)
        out[str(dpi)] = {
            "mean_confidence": round(statistics.mean(confidences), 1),
            "seconds_per_page": round(statistics.mean(seconds), 2),
        }
        print(f"{dpi} dpi: {out[str(dpi)]}", flush=True)
    return out


def chart(formats: dict[str, Any]) -> str:
    names = list(formats)
    fig, ax = pyplot().subplots(figsize=(9, 4.5))
    positions = range(len(names))
    ax.bar([p - 0.2 for p in positions], [formats[n]["floor_s_per_page"] for n in names], 0.4,
           label="floor: the library alone")  # fmt: skip
    ax.bar([p + 0.2 for p in positions], [formats[n]["pipeline_s_per_page"] for n in names], 0.4,
           label="extract_document (sandbox)")  # fmt: skip
    ax.set_xticks(list(positions), names, rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("seconds per page (log)")
    ax.set_title("Extraction per format against the bare library call")
    ax.legend()
    fig.tight_layout()
    return save_chart(fig, "formats", dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = arguments("formats", __doc__)
    parser.add_argument("--limit", type=int, default=0, help="files per format (0: all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per non-OCR file")
    args = parser.parse_args(argv)

    from rag_pipeline.core.stages.extract import start_sandbox

    start_sandbox()
    rows = corpus.phrases("office", "html", "scanned")
    if args.limit:
        taken: dict[str, int] = defaultdict(int)
        kept = []
        for row in rows:
            kind = FORMATS[Path(row[0]).suffix.lower()]
            if taken[kind] < args.limit:
                taken[kind] += 1
                kept.append(row)
        rows = kept
    measured = measure(rows, args.repeat)
    scanned_pdfs = sorted({r["file"] for r in measured if r["format"] == "ocr: pdf"})
    report = {
        "mode": f"limit {args.limit}" if args.limit else "full",
        **summary(measured),
        "render_dpi": render_dpi(scanned_pdfs) if scanned_pdfs else {},
        "files": measured,
    }
    written = write_json("formats", report), chart(report["formats"])
    print(json.dumps({k: v for k, v in report.items() if k != "files"}, indent=2))
    print(f"written to {' and '.join(written)}")
