"""Open server-sent event streams, counted per key, so no key can hold the API's connections.

Counted in this process: with several API processes, each allows its own share.
"""

import threading
from collections import Counter


class StreamSlots:
    """How many streams each key holds open; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()

    def take(self, holder: str, limit: int) -> bool:
        """One more stream for `holder`, unless it holds `limit` already."""
        with self._lock:
            if self._open[holder] >= limit:
                return False
            self._open[holder] += 1
            return True

    def give_back(self, holder: str) -> None:
        with self._lock:
            self._open[holder] -= 1
            if self._open[holder] <= 0:
                del self._open[holder]

    def held(self, holder: str) -> int:
        with self._lock:
            return self._open[holder]
