"""The node's notion of time, injected wherever a decision depends on it."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def system_clock() -> float:
    return time.time()


class FixedClock:
    """A clock for tests: returns `now` until moved with `advance` or `set`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, now: float) -> None:
        self.now = now


def rfc3339(ts: float) -> str:
    """Unix seconds as RFC 3339 UTC with milliseconds: 2026-11-24T15:35:33.123Z."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
