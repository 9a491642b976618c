"""The REST front door (FastAPI). Built under its own issue."""
