"""What the units of one batch know of rows that are not written yet.

A batch's writes go out together at its end, so a unit cannot read what an earlier
unit of the same batch wrote. Each kind of row such a unit needs has a named map here
(`Claims`): lookups made for the whole batch before its units run (`load`), and the
rows as earlier units left them (`claim`). A unit whose work is rolled back has its
claims undone with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

K = TypeVar("K")
V = TypeVar("V")
S = TypeVar("S")


class _Absent:
    """Stands for "no value before this claim" in the undo log."""


_ABSENT = _Absent()


class Claims(Generic[K, V]):
    """One named map: rows by key, as looked up or as left by earlier units."""

    def __init__(self) -> None:
        self._values: dict[K, V] = {}
        self._undo: list[tuple[K, V | _Absent]] = []
        self.prefetched = False

    def get(self, key: K) -> V | None:
        return self._values.get(key)

    def __contains__(self, key: K) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[K]:
        return iter(self._values)

    def load(self, key: K, value: V) -> None:
        """A row as the database holds it (a lookup for the batch; never undone). What a
        unit of the batch left stands: the database does not hold it yet."""
        self._values.setdefault(key, value)

    def claim(self, key: K, value: V) -> None:
        """A row as a unit leaves it; undone if that unit's work is rolled back."""
        self._undo.append((key, self._values.get(key, _ABSENT)))
        self._values[key] = value

    def mark(self) -> int:
        return len(self._undo)

    def reset(self, mark: int) -> None:
        while len(self._undo) > mark:
            key, before = self._undo.pop()
            if isinstance(before, _Absent):
                self._values.pop(key, None)
            else:
                self._values[key] = before


class KnownMessage(NamedTuple):
    """A message stored before or earlier in the batch: what a re-delivery is answered with."""

    digest: str
    receipt: bytes
    audit_index: int


class OutboxClaim(NamedTuple):
    """An outbox row's delivery state and lease owner, as the batch leaves it."""

    state: str
    lease_owner: str | None


@dataclass
class BatchCache:
    """The named maps of one batch."""

    # (sender, message id) -> the stored message
    messages: Claims[tuple[str, str], KnownMessage] = field(default_factory=Claims)
    # message key (messages.pk) -> its outbox row
    outbox: Claims[int, OutboxClaim] = field(default_factory=Claims)
    _attached: dict[type[Any], Any] = field(default_factory=dict)

    def attached(self, kind: type[S]) -> S:
        """The batch's one instance of `kind`, made on first use: state that a domain
        keeps for one batch (e.g. the refusal tallies it has read). It lives as long as
        the batch and is not undone with a unit; `kind` must be safe for that."""
        found = self._attached.get(kind)
        if found is None:
            found = self._attached[kind] = kind()
        made: S = found
        return made

    def mark(self) -> tuple[int, int]:
        return self.messages.mark(), self.outbox.mark()

    def reset(self, mark: tuple[int, int]) -> None:
        messages, outbox = mark
        self.messages.reset(messages)
        self.outbox.reset(outbox)
