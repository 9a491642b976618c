"""ZIP containers (DOCX, PPTX, XLSX, ODT, EPUB), checked before any parser sees them.

A 1.5 MB DOCX can hold XML that inflates to a gigabyte, which a parser then turns into a tree
several times that size. So, in order, each step cheaper than the next:
- the end-of-central-directory record (the last bytes of the file) says how many entries the
  archive has and how large its central directory is: an absurd count is refused before the
  directory is parsed (`check_directory`, which sniffing in the API process uses too);
- the central directory's own figures: entry count, total inflated size, and each entry's
  inflated-to-compressed ratio;
- every entry is then inflated once, a block at a time, and thrown away, counting what really
  comes out, whatever the directory declared: a directory that lies is caught while inflating,
  after at most the limit. Python's zipfile, which every reader here goes through, never yields
  more than an entry's declared size, so the readers inflate no more than was counted here.
Only stored and deflated entries are accepted: Office, OpenDocument and EPUB files use nothing
else, and zipfile inflates the other methods (bzip2, LZMA) without any bound on one block.
"""

import copy
import io
import struct
import zipfile
from dataclasses import dataclass

from rag_pipeline.core.stages.extract.limits import MB, ExtractionLimits, too_large
from rag_pipeline.core.stages.extract.model import ExtractionError

_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_EOCD_SIZE = 22
_MAX_COMMENT = 0xFFFF
_MIN_DIRECTORY_ENTRY = 46  # a central directory entry's fixed part, before its name
# An entry smaller than this is not judged by its ratio: a few hundred kilobytes of repetitive
# XML can compress a thousand times and still cost nothing to parse.
RATIO_FLOOR = MB
_BLOCK = MB
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


@dataclass(frozen=True)
class Directory:
    entries: int  # as the end record declares them
    size: int  # bytes of the central directory

    @property
    def most_entries(self) -> int:
        """The most entries a directory of this size can hold: zipfile reads it by its size,
        not by the declared count."""
        return max(self.entries, self.size // _MIN_DIRECTORY_ENTRY)


def directory(data: bytes) -> Directory | None:
    """The central directory as the end record describes it (zip64 included), without reading
    it; None without an end record (a truncated file)."""
    position = data.rfind(_EOCD, max(0, len(data) - _EOCD_SIZE - _MAX_COMMENT))
    if position < 0 or position + _EOCD_SIZE > len(data):
        return None
    entries, size = struct.unpack_from("<HI", data, position + 10)
    locator = position - 20
    if (entries == 0xFFFF or size == 0xFFFFFFFF) and data[locator : locator + 4] == _ZIP64_LOCATOR:
        (record,) = struct.unpack_from("<Q", data, locator + 8)
        if record + 56 <= len(data) and data[record : record + 4] == _ZIP64_EOCD:
            entries, size = struct.unpack_from("<QQ", data, record + 32)
    return Directory(entries, size)


def check_directory(data: bytes, max_entries: int, why: str = "(RAG_MAX_ZIP_ENTRIES)") -> None:
    """Refuse an archive whose end record declares more than `max_entries` entries (or a
    directory too large for that many), before anything parses its directory; `why` ends the
    message (the setting, or the reason for a fixed limit)."""
    found = directory(data)
    if found is not None and found.most_entries > max_entries:
        raise _too_many(found.most_entries, max_entries, why)


def _too_many(entries: int, max_entries: int, why: str) -> ExtractionError:
    return too_large(
        f"the archive has {entries:,} entries, more than the limit of {max_entries:,} {why}"
    )


def check_archive(data: bytes, limits: ExtractionLimits) -> None:
    """Raise `too_large` unless the archive stays within `limits` both as its directory
    declares it and as it really inflates; `damaged_document` for entries compressed in a way
    these formats never use, or whose directory misstates their size."""
    check_directory(data, limits.max_zip_entries)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = archive.infolist()
        if len(entries) > limits.max_zip_entries:
            raise _too_many(len(entries), limits.max_zip_entries, "(RAG_MAX_ZIP_ENTRIES)")
        for info in entries:
            if info.compress_type not in _METHODS:
                raise ExtractionError(
                    "damaged_document",
                    f"the archive's entry {_shown(info.filename)} uses a compression method "
                    f"({info.compress_type}) that Office, OpenDocument and EPUB files never use",
                )
            _check_ratio(info.filename, info.file_size, info.compress_size, limits)
        _check_inflated(sum(info.file_size for info in entries), limits)
        inflated = 0
        for info in entries:
            inflated += _inflate(archive, info, inflated, limits)


def _inflate(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, before: int, limits: ExtractionLimits
) -> int:
    """Inflate one entry, whatever size its directory entry declares, until the archive's
    total (`before` this entry) passes the limit; the entry's real size."""
    probe = copy.copy(info)
    # zipfile stops at the declared size: declare more than the limit leaves.
    probe.file_size = limits.max_inflated_bytes - before + _BLOCK
    size = 0
    with archive.open(probe) as entry:
        while block := entry.read(_BLOCK):
            size += len(block)
            _check_inflated(before + size, limits)
            _check_ratio(info.filename, size, info.compress_size, limits)
    if size != info.file_size:
        raise ExtractionError(
            "damaged_document",
            f"the archive's directory gives {_shown(info.filename)} {info.file_size:,} bytes, "
            f"but it inflates to {size:,}",
        )
    return size


def _check_inflated(size: int, limits: ExtractionLimits) -> None:
    if size > limits.max_inflated_bytes:
        raise too_large(
            f"the archive inflates to more than the limit of {limits.max_inflated_mb:,} MB "
            "(RAG_MAX_INFLATED_MB)"
        )


def _check_ratio(name: str, size: int, compressed: int, limits: ExtractionLimits) -> None:
    if size > RATIO_FLOOR and size > limits.max_zip_ratio * max(compressed, 1):
        raise too_large(
            f"the archive's entry {_shown(name)} inflates {size // max(compressed, 1):,} times "
            f"its compressed size, more than the limit of {limits.max_zip_ratio:,} "
            "(RAG_MAX_ZIP_RATIO)"
        )


def _shown(name: str) -> str:
    """An entry's name, as the file gives it, fit for a one-line message."""
    printable = "".join(c if c.isprintable() else "?" for c in name)
    return repr(printable if len(printable) <= 60 else printable[:57] + "...")
