"""OCR with Tesseract, through pytesseract: image files, and PDF pages without a text layer.

pytesseract runs the `tesseract` program that Debian packages (with its language data), so
what is installed is what `apt-get` installed, a missing program is a clear error rather than
a failed import, and each page runs in a process of its own that a timeout can kill.

Languages: `OcrOptions.languages` is a list of Tesseract language sets tried in turn on each
page until one reads it with a mean word confidence of at least `CONFIDENT`; the best reading
is kept. The default, `eng`, then `eng+jpn+kor+chi_sim+chi_tra`, then `jpn_vert`, was measured
on the scanned corpus: English alone reads Latin pages as well as the five-language set at a
third to a fifth of its time (0.7-11 s against 3-50 s a page), and scores 12-77 on pages with
CJK text, where the five-language set scores 78-92; vertical Japanese needs its own model.
Tesseract's own script detection (OSD) named Cyrillic for an English page and Latin for a
Korean one, so it is not used.
"""

import io
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import pytesseract
from PIL import Image, ImageOps, UnidentifiedImageError

from rag_pipeline.core.stages.extract.layout import reading
from rag_pipeline.core.stages.extract.limits import (
    DEFAULT_LIMITS,
    ExtractionLimits,
    TextBudget,
    check_pages,
    check_pixels,
    too_large,
)
from rag_pipeline.core.stages.extract.model import ExtractionError, OcrPages, RawPages
from rag_pipeline.core.stages.extract.sandbox import extend_bound

DEFAULT_LANGUAGES = ("eng", "eng+jpn+kor+chi_sim+chi_tra", "jpn_vert")
# A reading this confident ends the search for a better language set: every Latin page of the
# corpus read in English scores 84-95, its page of English and Korean 77 (and 92 with Korean).
CONFIDENT = 80.0
# Pages under this mean confidence fail the readability check (a warning): the corpus's
# readable pages score 78 and up, a language set that cannot read a page 21-46.
LOW_CONFIDENCE = 60.0
# Tesseract reads glyphs best at an x-height of 20-30 pixels. Small images (screenshots, web
# images) are scaled up until their longer side reaches this, by at most MAX_UPSCALE: at x4
# the corpus's Chinese image read worse than at x3.
UPSCALE_TARGET_PX = 1500
MAX_UPSCALE = 3
INSTALL_HINT = "apt-get install tesseract-ocr and its language packs (the README lists them)"
_CJK = r"\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
# Tesseract separates every CJK character by a space; the text has none.
_CJK_SPACE = re.compile(rf"(?<=[{_CJK}]) +(?=[{_CJK}])")


@dataclass(frozen=True)
class OcrOptions:
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    page_timeout_s: float = 60.0


DEFAULT_OCR = OcrOptions()


@dataclass(frozen=True)
class PageReading:
    text: str
    confidence: float  # mean word confidence, weighted by characters, 0-100
    languages: str


def check_available(options: OcrOptions) -> None:
    """Raise `ocr_unavailable`, saying how to fix it, unless Tesseract and every language
    the options name are installed."""
    try:
        installed = set(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractNotFoundError, OSError):
        raise ExtractionError(
            "ocr_unavailable", f"this document needs OCR, but Tesseract is missing: {INSTALL_HINT}"
        ) from None
    wanted = {lang for group in options.languages for lang in group.split("+")}
    if missing := sorted(wanted - installed):
        packages = " ".join("tesseract-ocr-" + lang.replace("_", "-") for lang in missing)
        raise ExtractionError(
            "ocr_unavailable",
            f"this document needs OCR in {', '.join(missing)}, whose Tesseract language data "
            f"is missing: apt-get install {packages}",
        )


def image_pages(
    data: bytes, options: OcrOptions, limits: ExtractionLimits = DEFAULT_LIMITS
) -> RawPages:
    """A PNG, JPEG or TIFF (every frame of a multi-page TIFF) read by OCR, a frame a page.

    Frames are decoded one at a time, each only once its header's size is within the pixel
    bound (a 250 KB TIFF can hold 150 frames that decode to 2 GB together, a 32 KB PNG a
    144-megapixel image). Blank frames are not read, as blank PDF pages are not.
    """
    with reading("image"):
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:  # its message names the BytesIO object
            raise ExtractionError(
                "damaged_document", "the image is damaged: its header cannot be decoded"
            ) from None
        except Image.DecompressionBombError:  # Pillow's own bound, twice its default 89 MP
            raise too_large(
                f"the image is above the limit of {limits.max_megapixels:g} megapixels "
                "(RAG_MAX_IMAGE_MEGAPIXELS)"
            ) from None
        count = getattr(image, "n_frames", 1)  # from the frames' headers, none decoded
        check_pages(count, limits)
    budget = TextBudget(limits)
    texts: list[str] = []
    read: dict[int, PageReading] = {}
    for number in range(1, count + 1):
        with reading("image"):
            image.seek(number - 1)
            check_pixels(image.width, image.height, limits)
            frame = ImageOps.exif_transpose(image)  # a decoded copy of this frame alone
        if is_blank(frame):
            texts.append("")
            continue
        if not read:
            check_available(options)
        extend_bound(options.page_timeout_s)
        read[number] = read_page(prepare(frame), options)
        texts.append(budget.spend(read[number].text))
    return RawPages(texts, count, ocr=ocr_pages(list(read), list(read.values())) if read else None)


def ocr_pages(numbers: Sequence[int], readings: Sequence[PageReading]) -> OcrPages:
    return OcrPages(
        tuple(numbers),
        tuple(round(r.confidence, 1) for r in readings),
        tuple(r.languages for r in readings),
    )


def prepare(image: Image.Image, upscale: bool = True) -> Image.Image:
    """Greyscale (on white, for transparent images), and scaled up if small."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode not in ("1", "L"):
        image = image.convert("L")
    factor = min(MAX_UPSCALE, math.ceil(UPSCALE_TARGET_PX / max(image.size)))
    if upscale and factor > 1:
        image = image.convert("L").resize(
            (image.width * factor, image.height * factor), Image.Resampling.LANCZOS
        )
    return image


def is_blank(image: Image.Image) -> bool:
    """No ink at all: a blank page, which OCR would only spend time on."""
    low, high = cast(tuple[int, int], image.convert("L").getextrema())
    return high - low < 16


def read_page(image: Image.Image, options: OcrOptions) -> PageReading:
    """The best reading of one page among the language sets, within the page's time bound.

    The bound covers every language set tried; past it the page is `extraction_timeout`.
    The caller grants the page its time with `extend_bound` before preparing it.
    """
    # One thread per page: Tesseract's OpenMP threads only fight the other runs for 2 cores.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    deadline = time.monotonic() + options.page_timeout_s
    best: PageReading | None = None
    for languages in options.languages:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            reading_ = _tesseract(image, languages, remaining)
        except RuntimeError as err:
            if "timeout" not in str(err).lower():
                raise
            break
        if best is None or reading_.confidence > best.confidence:
            best = reading_
        if best.confidence >= CONFIDENT:
            break
    if best is None:
        raise ExtractionError(
            "extraction_timeout", f"OCR of a page took longer than {options.page_timeout_s:g} s"
        )
    return best


def _tesseract(image: Image.Image, languages: str, timeout_s: float) -> PageReading:
    data = pytesseract.image_to_data(
        image,
        lang=languages,
        config="--psm 3",
        timeout=max(1, math.ceil(timeout_s)),
        output_type=pytesseract.Output.DICT,
    )
    lines: dict[tuple[int, int, int], list[str]] = {}
    paragraphs: list[tuple[int, int]] = []
    weighted = chars = 0.0
    for index, word in enumerate(data["text"]):
        confidence = float(data["conf"][index])
        if confidence < 0 or not word.strip():
            continue
        block, paragraph = data["block_num"][index], data["par_num"][index]
        lines.setdefault((block, paragraph, data["line_num"][index]), []).append(word)
        if not paragraphs or paragraphs[-1] != (block, paragraph):
            paragraphs.append((block, paragraph))
        weighted += confidence * len(word)
        chars += len(word)
    text = "\n\n".join(
        "\n".join(" ".join(words) for key, words in lines.items() if key[:2] == paragraph)
        for paragraph in paragraphs
    )
    return PageReading(_CJK_SPACE.sub("", text), weighted / chars if chars else 0.0, languages)
