"""Small hostile files, made by the tests that use them: each asks for far more memory or work
than its size suggests, as the attacks tried against the stack did (issue 24)."""

import functools
import io
import struct
import zlib
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

MB = 1024 * 1024
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)


@dataclass(frozen=True)
class Entry:
    name: str
    payload: bytes  # as stored in the archive (raw deflate when `method` is 8)
    crc: int
    size: int  # inflated
    method: int = zlib.DEFLATED
    declared_size: int | None = None  # what the headers say, if they lie


def deflated(name: str, content: bytes) -> Entry:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = packer.compress(content) + packer.flush()
    return Entry(name, payload, zlib.crc32(content), len(content))


def zip_archive(entries: list[Entry]) -> bytes:
    """A ZIP file written by hand, so that its headers can say what the test wants."""
    out = io.BytesIO()
    directory = io.BytesIO()
    for entry in entries:
        name = entry.name.encode()
        size = entry.size if entry.declared_size is None else entry.declared_size
        offset = out.tell()
        fields = (20, 0, entry.method, 0, 0, entry.crc, len(entry.payload), size, len(name))
        out.write(b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", *fields, 0) + name)
        out.write(entry.payload)
        directory.write(
            b"PK\x01\x02"
            + struct.pack("<HHHHHHIIIHHHHHII", 20, *fields, 0, 0, 0, 0, 0, offset)
            + name
        )
    start, listing = out.tell(), directory.getvalue()
    out.write(listing)
    out.write(
        b"PK\x05\x06"
        + struct.pack("<HHHHIIH", 0, 0, len(entries), len(entries), len(listing), start, 0)
    )
    return out.getvalue()


def _repeated(prefix: bytes, unit: bytes, times: int, suffix: bytes) -> Entry:
    """`prefix + unit * times + suffix`, deflated without deflating all of it: a full flush
    makes every deflated copy of `unit` the same bytes."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = packer.compress(prefix) + packer.flush(zlib.Z_FULL_FLUSH)
    body = packer.compress(unit) + packer.flush(zlib.Z_FULL_FLUSH)
    tail = packer.compress(suffix) + packer.flush()
    crc = zlib.crc32(prefix)
    for _ in range(times):
        crc = zlib.crc32(unit, crc)
    crc = zlib.crc32(suffix, crc)
    size = len(prefix) + len(unit) * times + len(suffix)
    return Entry("word/document.xml", head + body * times + tail, crc, size)


def docx_bomb(inflated_mb: int = 1024, lying: bool = False) -> bytes:
    """A DOCX of about 1.5 MB whose document.xml inflates to `inflated_mb` (1 GB); `lying`
    makes its headers claim 4 KB."""
    document = _repeated(
        f'<?xml version="1.0"?><w:document xmlns:w="{_W}"><w:body><w:p><w:r><w:t>'.encode(),
        b"a" * MB,
        inflated_mb,
        b"</w:t></w:r></w:p></w:body></w:document>",
    )
    if lying:
        document = Entry(document.name, document.payload, document.crc, document.size, 8, 4096)
    parts = [
        deflated("[Content_Types].xml", _TYPES.encode()),
        deflated("_rels/.rels", _RELS.encode()),
    ]
    return zip_archive([*parts, document])


def good_docx(text: str) -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


_ODT_MIME = b"application/vnd.oasis.opendocument.text"


def odt_paragraph(inline: str) -> bytes:
    """An ODT whose one paragraph holds `inline` (text and inline elements)."""
    content = (
        '<?xml version="1.0"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>'
        f"<text:p>{inline}</text:p></office:text></office:body></office:document-content>"
    ).encode()
    stored = Entry("mimetype", _ODT_MIME, zlib.crc32(_ODT_MIME), len(_ODT_MIME), method=0)
    return zip_archive([stored, deflated("content.xml", content)])


def odt_spaces(count: int = 1_000_000_000) -> bytes:
    """An ODT of about 400 bytes whose one paragraph asks for `count` spaces."""
    return odt_paragraph(f'Spaced<text:s text:c="{count}"/>out')


_SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"


def xlsx_parts(sheet_data: str, shared: str = "") -> list[Entry]:
    """The parts of a one-sheet workbook: `sheet_data` is the sheet's `<sheetData>` content,
    `shared` the shared strings table's `<si>` elements."""
    main = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.'
            'openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
            f'ContentType="{main}.sheet.main+xml"/><Override PartName="/xl/worksheets/'
            f'sheet1.xml" ContentType="{main}.worksheet+xml"/><Override PartName="/xl/'
            f'sharedStrings.xml" ContentType="{main}.sharedStrings+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<?xml version="1.0"?><Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" '
            f'Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0"?><workbook xmlns="{_SHEET_NS}" xmlns:r="{_REL_NS}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0"?><Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" '
            f'Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" '
            f'Type="{_REL_NS}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0"?><worksheet xmlns="{_SHEET_NS}"><sheetData>{sheet_data}'
            "</sheetData></worksheet>"
        ),
        "xl/sharedStrings.xml": f'<?xml version="1.0"?><sst xmlns="{_SHEET_NS}">{shared}</sst>',
    }
    return [deflated(name, text.encode()) for name, text in parts.items()]


def xlsx_shared_string(cells: int = 300, chars: int = 1_000_000) -> bytes:
    """An XLSX of about 4 KB whose one shared string of `chars` characters fills `cells`
    cells, as its sheet says."""
    rows = "".join(
        f'<row r="{n}"><c r="A{n}" t="s"><v>0</v></c></row>' for n in range(1, cells + 1)
    )
    return zip_archive(xlsx_parts(rows, f"<si><t>{'x' * chars}</t></si>"))


@functools.lru_cache(maxsize=2)  # ~10 s to encode 150 frames of 16 megapixels
def tiff_frames(frames: int = 150, side: int = 4000, text: str = "") -> bytes:
    """A multi-page TIFF of blank bilevel frames, Group 4 compressed (a few hundred bytes each,
    16 MB each decoded); `text`, if any, is written large on the first."""
    first, blank = Image.new("1", (side, side), 1), Image.new("1", (side, side), 1)
    if text:
        font = ImageFont.load_default(size=side // 25)
        ImageDraw.Draw(first).text((side // 10, side // 10), text, fill=0, font=font)
    buffer = io.BytesIO()
    first.save(
        buffer, "TIFF", compression="group4", save_all=True, append_images=[blank] * (frames - 1)
    )
    return buffer.getvalue()


def png_of(side: int = 12000) -> bytes:
    """A blank PNG of `side` x `side` pixels: 144 megapixels in about 30 KB."""
    buffer = io.BytesIO()
    Image.new("1", (side, side), 1).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def pdf_huge_page(points: int = 14400) -> bytes:
    """A PDF of about 450 bytes with one page `points` square (14,400 points is 5 metres, the
    largest PDF allows) and no text: a black square in its middle, for OCR to render."""
    third = points // 3
    content = f"0 g {third} {third} {third} {third} re f".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R >>" % (points, points),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()
