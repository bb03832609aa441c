"""Bounds of every text and number a client passes in a path or query.

Each value is checked here, at the edge, against the pattern of what it names (the
protocol's patterns, docs/protocol.md section 3) and a length, so a hostile value (a NUL
byte, a control character, a number past a column's range) is an `invalid-parameters`
problem before any database work, on every database alike.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from service.protocol.envelope import MAX_TYPE_LENGTH, PARTY_RE, TYPE_RE, UUID_RE

# The largest integer every JSON implementation holds exactly (RFC 7493 section 2.2):
# audit indices and message keys (one more than an index) never pass it.
SAFE_INT = 2**53 - 1

# Audit event names and outcomes (docs/auditors.md): lowercase words joined by dots
# (events) or hyphens (outcomes).
EVENT_RE = TYPE_RE
MAX_EVENT_LENGTH = 40
OUTCOME_RE = r"^[a-z][a-z0-9-]*$"
MAX_OUTCOME_LENGTH = 32
# The longest party id PARTY_RE allows: two letters, a colon and 32 characters.
MAX_PARTY_LENGTH = 35

MessageIdPath = Annotated[
    str, Path(pattern=UUID_RE, max_length=36, description="A message id (lowercase UUID)")
]
PartyPath = Annotated[
    str, Path(pattern=PARTY_RE, max_length=MAX_PARTY_LENGTH, description="A party id")
]
PartyQuery = Annotated[str | None, Query(pattern=PARTY_RE, max_length=MAX_PARTY_LENGTH)]
MessageIdQuery = Annotated[str | None, Query(pattern=UUID_RE, max_length=36)]
TypeQuery = Annotated[str | None, Query(pattern=TYPE_RE, max_length=MAX_TYPE_LENGTH)]
EventQuery = Annotated[str | None, Query(pattern=EVENT_RE, max_length=MAX_EVENT_LENGTH)]
OutcomeQuery = Annotated[str | None, Query(pattern=OUTCOME_RE, max_length=MAX_OUTCOME_LENGTH)]
CursorQuery = Annotated[int | None, Query(ge=0, le=SAFE_INT)]
