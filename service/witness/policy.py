"""Witness policies in the C2SP tlog-policy format (https://c2sp.org/tlog-policy).

A policy names the logs it accepts, the witnesses with their cosigner verifier
keys (and, optionally, their submission URLs), groups of witnesses with a
threshold, and the quorum::

    log migex/KZ:MIA+1a2b3c4d+AQ...
    witness UZ migex-witness/UZ:MIA+5e6f7a8b+BA... http://uz.example/v1/witness
    witness KG migex-witness/KG:MIA+...+BA...
    witness TJ migex-witness/TJ:MIA+...+BA...
    group partners 2 UZ KG TJ
    quorum partners

A group is met when at least k of its members are (``any`` is k = 1, ``all`` is
k = n), a witness when it has cosigned, and the checkpoint meets the policy when
the quorum is met; ``quorum none`` needs no cosignature. Names are defined before
use, each name at most once per group, no two keys alike. Only Ed25519 keys are
supported: 0x01 note keys for logs, 0x04 ``cosignature/v1`` keys for witnesses.

This module is pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.audit.checkpoint import verify_checkpoint
from service.audit.note import NoteError, parse_verifier_key, split_note
from service.witness.cosignature import (
    CosignatureError,
    CosignerKey,
    find_cosignature,
    parse_cosigner_vkey,
)

NONE = "none"
MAX_LOGS = 256
MAX_WITNESSES = 256
MAX_GROUPS = 256
MAX_POLICY_BYTES = 1024 * 1024


class PolicyError(ValueError):
    """A policy file is malformed; the message names the line."""


@dataclass(frozen=True)
class Witness:
    name: str
    key: CosignerKey
    url: str | None = None


@dataclass(frozen=True)
class Group:
    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class LogKey:
    vkey: str
    url: str | None = None


@dataclass(frozen=True)
class Policy:
    """A parsed policy. ``quorum`` is a witness name, a group name or ``none``."""

    logs: tuple[LogKey, ...]
    witnesses: dict[str, Witness]
    groups: dict[str, Group]
    quorum: str

    def met_by(self, cosigned: set[str] | frozenset[str]) -> bool:
        """Whether witnesses ``cosigned`` (by policy name) meet the quorum."""
        return self.quorum == NONE or self._met(self.quorum, cosigned)

    def _met(self, name: str, cosigned: set[str] | frozenset[str]) -> bool:
        group = self.groups.get(name)
        if group is None:
            return name in cosigned
        return sum(self._met(m, cosigned) for m in group.members) >= group.threshold

    def quorum_witnesses(self) -> frozenset[str]:
        """Every witness that can count towards the quorum."""
        if self.quorum == NONE:
            return frozenset()
        found: set[str] = set()
        pending = [self.quorum]
        while pending:
            name = pending.pop()
            group = self.groups.get(name)
            if group is None:
                found.add(name)
            else:
                pending.extend(group.members)
        return frozenset(found)


@dataclass(frozen=True)
class PolicyReport:
    """Which witnesses of a policy validly cosigned a checkpoint, and whether it is met.

    ``cosigned`` maps a witness's policy name to its cosignature's timestamp;
    ``invalid`` names witnesses with a line that claims their key but does not verify.
    """

    met: bool
    cosigned: dict[str, int] = field(default_factory=dict)
    invalid: tuple[str, ...] = ()


def evaluate(policy: Policy, note: str) -> PolicyReport:
    """Check a signed checkpoint's cosignatures against ``policy``.

    Lines by keys the policy does not know are ignored; a line that claims a
    pinned witness's key but does not verify counts for nothing and is reported.
    The log's own signature is not checked here (see :func:`log_signed`).
    """
    try:
        split_note(note)
    except NoteError as exc:
        raise PolicyError(f"not a signed note: {exc}") from exc
    cosigned: dict[str, int] = {}
    invalid: list[str] = []
    for name, witness in policy.witnesses.items():
        try:
            timestamp = find_cosignature(note, witness.key)
        except CosignatureError:
            invalid.append(name)
            continue
        if timestamp is not None:
            cosigned[name] = timestamp
    return PolicyReport(policy.met_by(frozenset(cosigned)), cosigned, tuple(invalid))


def parse_policy(text: str | bytes) -> Policy:
    """Parse a tlog-policy file; raises :class:`PolicyError` naming the first bad line."""
    raw = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError("a policy file is at most 1 MiB")
    if any((b < 0x20 and b not in (0x09, 0x0A)) or b == 0x7F for b in raw):
        raise PolicyError("a policy file may contain no control characters but tab and newline")
    builder = _Builder()
    for number, line in enumerate(raw.decode("utf-8", "surrogateescape").split("\n"), 1):
        words = line.replace("\t", " ").split()
        if not words or words[0].startswith("#"):
            continue
        try:
            builder.add(words)
        except PolicyError as exc:
            raise PolicyError(f"line {number}: {exc}") from None
    return builder.build()


class _Builder:
    def __init__(self) -> None:
        self.logs: list[LogKey] = []
        self.witnesses: dict[str, Witness] = {}
        self.groups: dict[str, Group] = {}
        self.quorum: str | None = None
        self.keys: set[bytes] = set()

    def add(self, words: list[str]) -> None:
        keyword, args = words[0], words[1:]
        if keyword == "log":
            self._log(args)
        elif keyword == "witness":
            self._witness(args)
        elif keyword == "group":
            self._group(args)
        elif keyword == "quorum":
            self._quorum(args)
        else:
            raise PolicyError(f"unknown keyword {keyword!r}")

    def _log(self, args: list[str]) -> None:
        if len(args) not in (1, 2):
            raise PolicyError("a log line is 'log <vkey> [<url>]'")
        try:
            _, _, public = parse_verifier_key(args[0])
        except ValueError as exc:
            raise PolicyError(f"bad log key: {exc}") from None
        self._unique_key(public.public_bytes_raw())
        if len(self.logs) >= MAX_LOGS:
            raise PolicyError(f"at most {MAX_LOGS} logs")
        self.logs.append(LogKey(args[0], args[1] if len(args) == 2 else None))

    def _witness(self, args: list[str]) -> None:
        if len(args) not in (2, 3):
            raise PolicyError("a witness line is 'witness <name> <vkey> [<url>]'")
        name = args[0]
        self._new_name(name)
        try:
            key = parse_cosigner_vkey(args[1])
        except CosignatureError as exc:
            raise PolicyError(str(exc)) from None
        self._unique_key(key.public.public_bytes_raw())
        if len(self.witnesses) >= MAX_WITNESSES:
            raise PolicyError(f"at most {MAX_WITNESSES} witnesses")
        self.witnesses[name] = Witness(name, key, args[2] if len(args) == 3 else None)

    def _group(self, args: list[str]) -> None:
        if len(args) < 3:
            raise PolicyError("a group line is 'group <name> all|any|<k> <name>...'")
        name, threshold, members = args[0], args[1], tuple(args[2:])
        self._new_name(name)
        for member in members:
            if member == NONE:
                raise PolicyError("'none' cannot be a group member")
            if member not in self.witnesses and member not in self.groups:
                raise PolicyError(f"{member!r} is not defined on a line before")
        if len(set(members)) != len(members):
            raise PolicyError("a name may be listed at most once in a group")
        if len(self.groups) >= MAX_GROUPS:
            raise PolicyError(f"at most {MAX_GROUPS} groups")
        self.groups[name] = Group(name, _threshold(threshold, len(members)), members)

    def _quorum(self, args: list[str]) -> None:
        if len(args) != 1:
            raise PolicyError("a quorum line is 'quorum <name>'")
        if self.quorum is not None:
            raise PolicyError("a policy has exactly one quorum line")
        name = args[0]
        if name != NONE and name not in self.witnesses and name not in self.groups:
            raise PolicyError(f"{name!r} is not defined on a line before")
        self.quorum = name

    def _new_name(self, name: str) -> None:
        if name == NONE:
            raise PolicyError("'none' is predefined")
        if name in self.witnesses or name in self.groups:
            raise PolicyError(f"{name!r} is defined twice")

    def _unique_key(self, key: bytes) -> None:
        if key in self.keys:
            raise PolicyError("the same public key is listed twice")
        self.keys.add(key)

    def build(self) -> Policy:
        if self.quorum is None:
            raise PolicyError("a policy needs a quorum line")
        return Policy(tuple(self.logs), dict(self.witnesses), dict(self.groups), self.quorum)


def _threshold(word: str, n: int) -> int:
    if word == "all":
        return n
    if word == "any":
        return 1
    if not (word.isascii() and word.isdigit()) or (len(word) > 1 and word[0] == "0"):
        raise PolicyError("a group's threshold is all, any or a decimal number")
    k = int(word)
    if not 1 <= k <= n:
        raise PolicyError(f"a group's threshold must be between 1 and its {n} members")
    return k


def log_signed(policy: Policy, note: str) -> bool:
    """Whether the checkpoint note is signed by one of the policy's logs (False if none listed)."""
    for log in policy.logs:
        try:
            verify_checkpoint(note, log.vkey)
        except ValueError:
            continue
        return True
    return False
