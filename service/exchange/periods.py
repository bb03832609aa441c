"""Retention periods by category of record and by agreement: pure decisions.

Each message type belongs to one category (`CATEGORIES`); a type in none belongs to
`other`. A period is found, most specific first: the agreement's period for the
category, the agreement's period for all its records, the category's period, the
node's `message_body_days`. `PurgeRule`s cover every stored message exactly once, so a
purge runs one rule after another, each with its own cutoff and audit entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

DAY: Final = 86400.0
OTHER: Final = "other"
CATEGORIES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "statistics": ("statistics.migration-flows",),
        "citizenship-checks": (
            "citizenship.verification-request",
            "citizenship.verification-response",
        ),
        "violation-notices": ("migration.violation-notice",),
        "readmission-cases": ("readmission.request", "readmission.response"),
        "documents": ("experience.document",),
    }
)
CATEGORY_NAMES: Final = (*CATEGORIES, OTHER)
_KNOWN_TYPES: Final = tuple(t for types in CATEGORIES.values() for t in types)


@dataclass(frozen=True)
class AgreementPeriods:
    """What an agreement says: a period for all its records and/or per category."""

    days: int | None = None
    categories: Mapping[str, int] = field(default_factory=dict)

    def period(self, category: str) -> int | None:
        return self.categories.get(category, self.days)


@dataclass(frozen=True)
class PurgeRule:
    """The messages of one category (and agreement) and how long their bodies are kept.

    `types` None: every type outside the named categories. `agreement` names the one
    agreement the rule covers; otherwise it covers every agreement but `excluded`."""

    category: str
    types: tuple[str, ...] | None
    days: int
    agreement: str | None = None
    excluded: tuple[str, ...] = ()

    @property
    def known_types(self) -> tuple[str, ...]:
        """The types a rule with `types` None leaves out."""
        return _KNOWN_TYPES

    def cutoff(self, now: float) -> float:
        """Bodies of messages stored before this instant are purged."""
        return now - self.days * DAY


@dataclass(frozen=True)
class RetentionPolicy:
    default_days: int
    categories: Mapping[str, int] = field(default_factory=dict)
    agreements: Mapping[str, AgreementPeriods] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.categories) - set(CATEGORY_NAMES)
        for periods in self.agreements.values():
            unknown |= set(periods.categories) - set(CATEGORY_NAMES)
        if unknown:
            raise ValueError(f"unknown retention categories: {', '.join(sorted(unknown))}")

    def days_for(self, category: str, agreement: str | None = None) -> int:
        periods = self.agreements.get(agreement) if agreement is not None else None
        own = periods.period(category) if periods is not None else None
        if own is not None:
            return own
        return self.categories.get(category, self.default_days)

    def rules(self) -> list[PurgeRule]:
        rules: list[PurgeRule] = []
        for category in CATEGORY_NAMES:
            types = CATEGORIES.get(category)
            overriding = sorted(
                a for a, p in self.agreements.items() if p.period(category) is not None
            )
            rules.append(
                PurgeRule(category, types, self.days_for(category), excluded=tuple(overriding))
            )
            rules.extend(
                PurgeRule(category, types, self.days_for(category, a), agreement=a)
                for a in overriding
            )
        return rules
