"""What a documents verb refuses, as exceptions the API and the CLI map to their answers."""


class DocumentNotFound(LookupError):
    def __init__(self, doc_id: str, why: str = "") -> None:
        super().__init__(f"no document with id {doc_id!r}{why}")
        self.doc_id = doc_id


class DocumentBusy(Exception):
    """A document a run is already queued or running for."""

    def __init__(self, doc_id: str, status: str) -> None:
        super().__init__(f"{doc_id} is {status}: wait until its run ends, then try again")
        self.doc_id = doc_id


class NotFailed(Exception):
    """A retry of one document that has not failed."""

    def __init__(self, doc_id: str, status: str) -> None:
        super().__init__(f"{doc_id} is {status}: only a failed document is retried")
        self.doc_id = doc_id


class InvalidOptions(ValueError):
    """Chunk options no chunking can follow."""
