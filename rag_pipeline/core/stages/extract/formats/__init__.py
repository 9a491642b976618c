"""One reader per format: bytes in, pages of raw text out (see the extract package)."""
