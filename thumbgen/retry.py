"""When our clients try again: after a 429 or 503, and between two polls.

A 429 or 503 means the request was not processed (throttled, over a limit, or the API
could not check the token), so sending it again is safe, POSTs included. Any other error
is the answer and is never retried. The wait is the server's `Retry-After` (seconds or an
HTTP date) when it gives one, else exponential backoff with full jitter (AWS Architecture
Blog, "Exponential Backoff And Jitter": sleep = random(0, min(cap, base * 2^attempt))), and
the waits of one call never add up to more than `max_wait`. API Gateway's own throttling
answers 429 `{"message": "Too Many Requests"}` without Retry-After: backoff covers it. A
429 of the API itself without Retry-After (redelivery rounds used up) says that waiting
will not help: it is not retried. The web page (chalicelib/api/web/app.js) follows the same
rules.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date); None when
    absent or unreadable. A date in the past is 0."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def worth_retrying(status: int, retry_after: float | None, own_error: bool) -> bool:
    """A 429/503 that says to come back (Retry-After), or one that is not the API's own
    answer (a gateway's throttling has no Retry-After)."""
    return status in RETRY_STATUSES and (retry_after is not None or not own_error)


@dataclass(frozen=True)
class Backoff:
    """How long to wait before each retry of one call, and how long in all."""

    max_wait: float = 60.0  # seconds of waiting, summed over one call's retries
    base: float = 0.5
    cap: float = 10.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """The wait before retry number `attempt` (0 for the first)."""
        if retry_after is not None:
            return retry_after
        return rng.uniform(0, min(self.cap, self.base * 2 ** attempt))


NO_RETRY = Backoff(max_wait=0.0)


@dataclass(frozen=True)
class Polling:
    """Waits between polls of an image's status: the first after `first` seconds (the
    pipeline takes a few hundred ms at best), each next one `growth` times longer, never
    over `cap`, each scaled by a random factor in [1 - jitter, 1] so that many clients
    started together spread out."""

    first: float = 0.5
    growth: float = 1.6
    cap: float = 5.0
    jitter: float = 0.5

    def delays(self, rng: random.Random) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay * (1 - self.jitter * rng.random())
            delay = min(self.cap, delay * self.growth)
