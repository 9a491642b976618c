"""Reading a server-sent event stream in the test's own thread, with a deadline on every wait.

The stream sends a keep-alive comment while nothing changes, so each read hands control back
often enough for the deadline to be enforced; nothing here needs a second thread.
"""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest


@dataclass
class Frame:
    event: str | None = None
    data: Any = None
    comment: str | None = None


class EventStream:
    def __init__(self, response: httpx.Response, timeout: float) -> None:
        self._frames = _frames(response.iter_lines())
        self.timeout = timeout
        self.comments: list[str] = []

    def _next(self, deadline: float, waiting_for: str) -> Frame | None:
        """The next frame (None when the stream ends); keep-alive comments are recorded."""
        while True:
            frame = next(self._frames, None)
            if time.monotonic() > deadline:
                pytest.fail(f"no {waiting_for} within {self.timeout} s (then: {frame})")
            if frame is None or frame.comment is None:
                return frame
            self.comments.append(frame.comment)
            if waiting_for == "comment":
                return frame

    def next_status(self) -> dict[str, Any]:
        """The next `status` event's document; fails if the stream ends or the wait is long."""
        frame = self._next(time.monotonic() + self.timeout, "status event")
        assert frame is not None, "the stream closed before the next status event"
        assert frame.event == "status", frame
        assert isinstance(frame.data, dict), frame
        return frame.data

    def next_event(self) -> Frame:
        """The next event of any kind, keep-alive comments skipped; fails if the stream ends
        or the wait is long."""
        frame = self._next(time.monotonic() + self.timeout, "event")
        assert frame is not None, "the stream closed before the next event"
        return frame

    def next_comment(self) -> str:
        frame = self._next(time.monotonic() + self.timeout, "comment")
        assert frame is not None and frame.comment is not None, f"expected a comment: {frame}"
        return frame.comment

    def assert_closed(self) -> None:
        """The server ends the stream, with no further event."""
        frame = self._next(time.monotonic() + self.timeout, "end of the stream")
        assert frame is None, f"the stream went on: {frame}"


def _frames(lines: Iterator[str]) -> Iterator[Frame]:
    frame = Frame()
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                frame.data = json.loads("\n".join(data))
            if data or frame.event is not None or frame.comment is not None:
                yield frame
            frame, data = Frame(), []
        elif line.startswith(":"):
            frame.comment = line[1:].strip()
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                frame.event = value
            elif field == "data":
                data.append(value)


@contextmanager
def open_events(
    client: httpx.Client,
    status_url: str,
    timeout: float = 60,
    headers: dict[str, str] | None = None,
) -> Iterator[EventStream]:
    """`GET <status_url>/events`, checked to be an event stream."""
    with client.stream("GET", f"{status_url}/events", headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventStream(response, timeout)
