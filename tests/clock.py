"""A clock a test sets by hand, for code that takes `now` as a callable."""
from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now
