"""Verify an exported audit log, or one entry's inclusion, without the node.

An export is JSON Lines, one entry per line, in index order from 0::

    {"index": 0, "leaf_data": "<standard base64 of the leaf bytes>", "entry": {...}}

``leaf_data`` is exactly what was hashed into the log and must equal the RFC 8785
(JCS) canonical form of ``entry``; ``entry["index"]``, when present, must equal
``index``. A node's export also carries ``columns``, the search columns stored
beside the leaf (``event``, ``party``, ``message_id``, ``type``, ``outcome``,
``code``, and ``time`` in Unix seconds); when present, each must equal the entry's
own member (``time`` must give back the entry's ``time`` text), so an index changed
in the database without touching the signed entries is found. Other members of a
line are ignored; empty lines are skipped.
Verification streams the export and keeps O(log n) hashes, so an export of any
length can be checked; long exports are checked on several processors.
"""

from __future__ import annotations

import binascii
import json
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from multiprocessing.pool import AsyncResult
from typing import Any, NoReturn

from service.audit.checkpoint import Checkpoint, verify_checkpoint
from service.audit.columns import column_mismatches
from service.audit.merkle import EMPTY_ROOT, CompactRange, ProofError, leaf_hash, verify_inclusion
from service.protocol.canonical import canonicalize_fast

# Integers of up to 15 digits are inside the I-JSON range of RFC 8785 (|n| < 2**53).
_SAFE_INT_DIGITS = 15
# Below this code point, UTF-16 code unit order (RFC 8785) equals code point order.
# Entries checked in this process before other processors are brought in.
_SEQUENTIAL_ENTRIES = 50_000
_CHUNK_LINES = 4_096
# Past this many workers, folding the hashes in this process is the bottleneck.
_MAX_DEFAULT_WORKERS = 8
# Worker processes are forked, so callers need no main-module guard; where fork is
# not the safe default (Windows, macOS) the whole export is checked in-process.
_FORK_AVAILABLE = sys.platform.startswith("linux")


class ExportLineError(ValueError):
    """One line of an export is not a well-formed, self-consistent entry."""


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_export`.

    ``entries`` counts the entries read; ``root`` is the root computed at the
    checkpoint's size, or over the entries read before verification stopped.
    ``first_bad_index`` is the index at which the first malformed or
    inconsistent line was found; it is None when every line is well formed but
    the export is shorter than the checkpoint or its root differs.
    """

    ok: bool
    entries: int
    root: bytes
    first_bad_index: int | None
    reason: str | None


class EntryReader:
    """Parses export lines and returns their verified leaf data.

    The canonical form of an entry is `canonicalize_fast`'s; the decoder notes whether
    a line held a floating-point number or an integer of 16 or more digits, so that
    the encoder's fast path needs no second walk over the entry.
    """

    def __init__(self) -> None:
        self._decode = json.JSONDecoder(
            object_pairs_hook=_unique_object,
            parse_float=self._flag_float,
            parse_int=self._checked_int,
            parse_constant=_reject_constant,
        ).decode
        self._fast = True

    def _flag_float(self, literal: str) -> float:
        self._fast = False
        return float(literal)

    def _checked_int(self, literal: str) -> int:
        if len(literal) > _SAFE_INT_DIGITS:
            self._fast = False
        return int(literal)

    def read(self, line: bytes | str, expected_index: int | None = None) -> tuple[int, bytes]:
        """Return (index, leaf data) of one line; raise :class:`ExportLineError`."""
        record = self._parse(line)
        index, entry = record.get("index"), record.get("entry")
        if type(index) is not int or index < 0:
            raise ExportLineError("'index' must be a non-negative integer")
        if expected_index is not None and index != expected_index:
            raise ExportLineError(f"found index {index} where index {expected_index} was expected")
        if type(entry) is not dict:
            raise ExportLineError("'entry' must be a JSON object")
        own = entry.get("index", index)
        if type(own) is not int or own != index:
            raise ExportLineError("the entry's own 'index' differs from the line's index")
        data = _decode_leaf_data(record.get("leaf_data"))
        if self._canonical(entry) != data:
            raise ExportLineError("'leaf_data' is not the RFC 8785 form of 'entry'")
        if "columns" in record:
            _check_columns(record["columns"], entry)
        return index, data

    def _parse(self, line: bytes | str) -> dict[str, Any]:
        self._fast = True
        try:
            record = self._decode(line.decode("utf-8") if isinstance(line, bytes) else line)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise ExportLineError(f"not a JSON line: {exc}") from exc
        if type(record) is not dict:
            raise ExportLineError("a line must be a JSON object")
        return record

    def _canonical(self, entry: dict[str, Any]) -> bytes:
        try:
            return canonicalize_fast(entry, numbers_checked=self._fast)
        except ValueError as exc:
            raise ExportLineError(f"the entry has no RFC 8785 form: {exc}") from exc


def _check_columns(columns: object, entry: dict[str, Any]) -> None:
    if type(columns) is not dict:
        raise ExportLineError("'columns' must be a JSON object")
    wrong = column_mismatches(columns, entry)
    if wrong:
        raise ExportLineError(
            f"the stored search columns differ from the signed entry: {', '.join(wrong)}"
        )


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _reject_constant(literal: str) -> Any:
    raise ValueError(f"{literal} is not JSON")


def _decode_leaf_data(value: object) -> bytes:
    if not isinstance(value, str) or not value.isascii():
        raise ExportLineError("'leaf_data' must be a base64 string")
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except binascii.Error as exc:
        raise ExportLineError(f"'leaf_data' is not standard base64: {exc}") from exc


class _Stop(Exception):
    """Verification has reached its verdict before the end of the export."""

    def __init__(self, report: VerifyReport) -> None:
        super().__init__(report.reason)
        self.report = report


class _TreeCheck:
    """Folds verified leaf hashes and compares the root at the checkpoint's size."""

    def __init__(self, cp: Checkpoint) -> None:
        self.cp = cp
        self.tree = CompactRange()
        self.count = 0
        if cp.size == 0 and cp.root != EMPTY_ROOT:
            raise _Stop(_root_mismatch(cp, 0, EMPTY_ROOT))

    def add(self, hashed: bytes) -> None:
        self.count += 1
        if self.count <= self.cp.size:
            self.tree.append(hashed)
            if self.count == self.cp.size and self.tree.root() != self.cp.root:
                raise _Stop(_root_mismatch(self.cp, self.count, self.tree.root()))

    def fail(self, reason: str) -> NoReturn:
        raise _Stop(VerifyReport(False, self.count, self.root(), self.count, reason))

    def root(self) -> bytes:
        return self.tree.root() if self.count < self.cp.size else self.cp.root

    def verdict(self) -> VerifyReport:
        if self.count < self.cp.size:
            reason = f"the export has {self.count} entries but the checkpoint covers {self.cp.size}"
            return VerifyReport(False, self.count, self.tree.root(), None, reason)
        return VerifyReport(True, self.count, self.cp.root, None, None)


def _root_mismatch(cp: Checkpoint, count: int, root: bytes) -> VerifyReport:
    reason = f"the root of the first {cp.size} entries differs from the checkpoint's root"
    return VerifyReport(False, count, root, None, reason)


def verify_export(
    lines: Iterable[bytes | str],
    checkpoint_note: str,
    vkey: str,
    *,
    workers: int | None = None,
) -> VerifyReport:
    """Check an export against a signed checkpoint.

    Every line must be well formed, numbered densely from 0 and carry leaf data
    equal to its entry's canonical form; the root over the first ``size``
    entries must equal the checkpoint's root (later entries are checked for
    shape only). Stops at the first problem. Raises ``NoteError`` or
    ``CheckpointError`` (both ValueError) if the checkpoint itself does not verify.

    ``workers`` is the number of forked processes that check lines once an
    export is longer than 50,000 entries (default: the processors available, up
    to 8, on Linux; 1, or any other system, keeps all work in this process).
    The result does not depend on it.
    """
    cp = verify_checkpoint(checkpoint_note, vkey)
    try:
        check = _TreeCheck(cp)
        entries = (line for line in lines if line.strip())
        _check_sequentially(check, islice(entries, _SEQUENTIAL_ENTRIES))
        following = next(entries, None)
        if following is not None:
            rest = chain((following,), entries)
            pool_size = _default_workers() if workers is None else workers
            if pool_size > 1 and _FORK_AVAILABLE:
                _check_in_pool(check, rest, pool_size)
            else:
                _check_sequentially(check, rest)
    except _Stop as stop:
        return stop.report
    return check.verdict()


def _check_sequentially(check: _TreeCheck, entries: Iterable[bytes | str]) -> None:
    reader = EntryReader()
    for line in entries:
        try:
            _, data = reader.read(line, expected_index=check.count)
        except ExportLineError as exc:
            check.fail(str(exc))
        check.add(leaf_hash(data))


def _check_chunk(first_index: int, lines: list[bytes | str]) -> tuple[list[bytes], str | None]:
    """Leaf hashes of consecutive lines, up to the first bad one and its reason."""
    reader = EntryReader()
    hashes: list[bytes] = []
    for offset, line in enumerate(lines):
        try:
            _, data = reader.read(line, expected_index=first_index + offset)
        except ExportLineError as exc:
            return hashes, str(exc)
        hashes.append(leaf_hash(data))
    return hashes, None


def _check_in_pool(check: _TreeCheck, entries: Iterator[bytes | str], workers: int) -> None:
    """Chunks of lines hashed by `workers` forked processes, at most two per worker
    waiting at a time (memory stays bounded), their hashes added in order.

    A `multiprocessing` pool, not a `concurrent.futures` one: at the first bad entry
    the workers are terminated, where shutting down a `ProcessPoolExecutor` with
    cancelled work queued can deadlock on some Python 3.11 releases."""
    pool = multiprocessing.get_context("fork").Pool(processes=workers)
    finished = False
    try:
        pending: deque[AsyncResult[tuple[list[bytes], str | None]]] = deque()
        submitted = check.count
        while chunk := list(islice(entries, _CHUNK_LINES)):
            pending.append(pool.apply_async(_check_chunk, (submitted, chunk)))
            submitted += len(chunk)
            if len(pending) >= 2 * workers:
                _take(check, pending.popleft())
        while pending:
            _take(check, pending.popleft())
        finished = True
    finally:
        if finished:
            pool.close()
        else:
            pool.terminate()
        pool.join()


def _take(check: _TreeCheck, result: AsyncResult[tuple[list[bytes], str | None]]) -> None:
    hashes, reason = result.get()
    for hashed in hashes:
        check.add(hashed)
    if reason is not None:
        check.fail(reason)


def _default_workers() -> int:
    if hasattr(os, "sched_getaffinity"):
        available = len(os.sched_getaffinity(0))
    else:
        available = os.cpu_count() or 1
    return min(available, _MAX_DEFAULT_WORKERS)


def prove_inclusion(
    entry_line: str, proof: Sequence[bytes], checkpoint_note: str, vkey: str
) -> None:
    """Check that one exported entry line is in the log of a signed checkpoint.

    ``proof`` is the RFC 9162 inclusion path for the entry's index at the
    checkpoint's size. Raises :class:`ProofError` for any failure, including a
    checkpoint that does not verify or a malformed entry line.
    """
    try:
        cp = verify_checkpoint(checkpoint_note, vkey)
    except ValueError as exc:
        raise ProofError(f"checkpoint does not verify: {exc}") from exc
    try:
        index, data = EntryReader().read(entry_line)
    except ExportLineError as exc:
        raise ProofError(f"entry line is invalid: {exc}") from exc
    verify_inclusion(index, cp.size, leaf_hash(data), proof, cp.root)
