"""When the client tries a request again: 429, 503 and connection errors, with backoff."""

import random
from dataclasses import dataclass

import httpx

# Errors raised before the request reached the server: safe to send again whatever it does.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}


@dataclass(frozen=True)
class Retry:
    """`attempts` tries in all; the n-th wait is `backoff * 2**(n-1)` seconds, jittered and
    capped at `max_backoff`, or the server's `Retry-After` when it sends one (also capped).

    Retried: 429 and 503 answers, connection failures, and for idempotent methods any
    transport error. Never any other 4xx or 5xx: they would fail the same way again.
    """

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    statuses: frozenset[int] = frozenset({429, 503})

    def after(self, attempt: int, method: str, outcome: httpx.Response | Exception) -> float | None:
        """Seconds to wait before trying again after `attempt` (from 1), or None to stop."""
        if attempt >= self.attempts:
            return None
        if isinstance(outcome, httpx.Response):
            if outcome.status_code not in self.statuses:
                return None
            advised = _retry_after(outcome)
            if advised is not None:
                return min(advised, self.max_backoff)
        elif not isinstance(outcome, _NOT_SENT) and method.upper() not in _IDEMPOTENT:
            return None
        wait = min(self.backoff * 2.0 ** (attempt - 1), self.max_backoff)
        return wait * random.uniform(0.5, 1.0)


NO_RETRY = Retry(attempts=1)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
