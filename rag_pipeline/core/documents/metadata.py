"""Documents' metadata: what a value may be, how large it may grow, and how a change merges.

Metadata is a JSON object whose keys are names (letters, digits, `_`, `.`, `-`; at most 64
characters, not starting with `$`) and whose values are strings, numbers, booleans or lists of
strings. `document_id`, `filename`, `media_type` and `collection` are the document's own and
cannot be set. The whole object, as compact JSON, holds at most `max_bytes` bytes.
"""

import json
import math
import re
from typing import Any

RESERVED = frozenset({"document_id", "filename", "media_type", "collection"})
KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")
# The landing zone's sidecar: `<file>.meta.json` beside `<file>`.
SIDECAR_SUFFIX = ".meta.json"

# The default limit on one document's metadata, as compact JSON (RAG_METADATA_MAX_BYTES).
METADATA_MAX_BYTES = 8192


class MetadataError(ValueError):
    """Metadata that cannot be kept; the message says which field and why."""


def encoded_size(metadata: dict[str, Any]) -> int:
    return len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())


def validate(metadata: Any, max_bytes: int) -> dict[str, Any]:
    """The metadata as it will be kept, or MetadataError saying what is wrong with it."""
    if not isinstance(metadata, dict):
        raise MetadataError("metadata must be a JSON object")
    for key, value in metadata.items():
        _check_key(key)
        _check_value(key, value)
    size = encoded_size(metadata)
    if size > max_bytes:
        raise MetadataError(f"metadata is {size} bytes as JSON; the limit is {max_bytes}")
    return dict(metadata)


def parse(text: str | bytes, max_bytes: int) -> dict[str, Any]:
    """Metadata sent as JSON text (an upload's form field, a landing sidecar)."""
    if len(text) > max_bytes * 4:
        raise MetadataError(f"metadata is larger than the limit of {max_bytes} bytes")
    try:
        loaded = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MetadataError(f"metadata is not valid JSON: {exc}") from exc
    return validate(loaded, max_bytes)


def merge(current: dict[str, Any], patch: Any, max_bytes: int) -> dict[str, Any]:
    """JSON merge patch: a key set to null goes, any other value replaces the old one."""
    if not isinstance(patch, dict):
        raise MetadataError("metadata must be a JSON object")
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            _check_key(key)
            merged.pop(key, None)
        else:
            merged[key] = value
    return validate(merged, max_bytes)


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise MetadataError(
            f"metadata key {key!r} must be 1-64 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'"
        )
    if key in RESERVED:
        raise MetadataError(f"metadata key {key!r} is the document's own; choose another name")


def _check_value(key: str, value: Any) -> None:
    if isinstance(value, bool | str):
        return
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise MetadataError(f"metadata {key!r}: numbers must be finite")
        return
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return
    raise MetadataError(
        f"metadata {key!r} must be a string, a number, a boolean or a list of strings"
    )
