"""The ingestion stages: extract, chunk, embed, index."""
