"""The node's notion of time, injected wherever a decision depends on it."""

from __future__ import annotations

import functools
import math
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
    second = math.floor(ts)
    micros = round((ts - second) * 1_000_000)  # as datetime rounds: half to even
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    return f"{_second_prefix(second)}{micros // 1000:03d}Z"


@functools.lru_cache(maxsize=4)
def _second_prefix(second: int) -> str:
    """'2026-11-24T15:35:33.' of a whole second: every log line formats one, and lines
    come many to a second, so the date is formatted once a second."""
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
