"""The document events stream (`GET /documents/{id}/events`), parsed line by line."""

from rag_client.models import Document


class EventParser:
    """Server-sent events in, `status` documents out; comments (keep-alives) are skipped."""

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> Document | None:
        """The document a `status` event carries, once its blank line ends it."""
        if line == "":
            event, data = self._event, "\n".join(self._data)
            self._event, self._data = None, []
            if event == "status" and data:
                return Document.model_validate_json(data)
            return None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None
