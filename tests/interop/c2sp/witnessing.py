"""The two sides of c2sp.org/tlog-witness: a tiny log that submits, a tiny witness.

``TinyLog`` keeps its leaves in memory, signs checkpoints with an Ed25519 note key
and asks witnesses for cosignatures with ``add-checkpoint``, learning the size a
witness last cosigned from its 409 answer as the specification describes.
``TinyWitness`` is a loopback HTTP server that answers ``add-checkpoint`` with the
statuses the specification lists, keeping its state in memory under one lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.interop.c2sp import notes, tree

MAX_PROOF_LINES = 63


def add_checkpoint_body(old: int, hashes: list[bytes], checkpoint_note: str) -> bytes:
    lines = [f"old {old}\n", *(notes.b64encode(h) + "\n" for h in hashes), "\n"]
    return ("".join(lines) + checkpoint_note).encode("utf-8")


def parse_add_checkpoint_body(body: bytes) -> tuple[int, list[bytes], str]:
    text = body.decode("utf-8")
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise notes.FormatError("no empty line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old "):
        raise notes.FormatError("the first line is 'old <size>'")
    size = first[4:]
    if not size.isascii() or not size.isdigit() or (size != "0" and size[0] == "0"):
        raise notes.FormatError(f"bad old size {size!r}")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise notes.FormatError("more than 63 proof lines")
    hashes = [notes.b64decode(line) for line in lines[1:]]
    if any(len(h) != 32 for h in hashes):
        raise notes.FormatError("a proof line is not a SHA-256 hash")
    return int(size), hashes, note


@dataclass
class Submission:
    status: int
    content_type: str
    body: str


@dataclass
class TinyLog:
    """A log run by this independent code: leaves, a note key, checkpoints."""

    origin: str
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    leaves: list[bytes] = field(default_factory=list)

    @property
    def vkey(self) -> notes.VerifierKey:
        return notes.VerifierKey.for_key(self.origin, notes.TYPE_ED25519, self.private.public_key())

    def append(self, data: bytes) -> int:
        self.leaves.append(data)
        return len(self.leaves) - 1

    def checkpoint(self, size: int | None = None) -> str:
        n = len(self.leaves) if size is None else size
        cp = notes.Checkpoint(self.origin, n, tree.mth(self.leaves[:n]))
        return notes.sign_note(cp.text(), self.origin, self.private)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return [] if old in (0, new) or old > new else tree.proof(old, self.leaves[:new])

    def submit(
        self, client: httpx.Client, url: str, old: int, size: int | None = None
    ) -> Submission:
        """One add-checkpoint request from ``old`` to ``size`` (default: the whole log)."""
        n = len(self.leaves) if size is None else size
        body = add_checkpoint_body(old, self.consistency(old, n), self.checkpoint(n))
        resp = client.post(url, content=body)
        return Submission(resp.status_code, resp.headers.get("content-type", ""), resp.text)

    def witness(
        self, client: httpx.Client, url: str, witness: notes.VerifierKey, old: int = 0
    ) -> tuple[str, int]:
        """Obtain a verified cosignature line; on 409 retry once from the size given."""
        answer = self.submit(client, url, old)
        if answer.status == 409 and answer.content_type.startswith("text/x.tlog.size"):
            answer = self.submit(client, url, int(answer.body.strip()))
        if answer.status != 200:
            raise notes.VerificationError(f"witness answered {answer.status}: {answer.body!r}")
        note = self.checkpoint() + answer.body
        _, verified = notes.verify_note(note, [witness])
        timestamp = verified[str(witness)]
        assert timestamp is not None
        return answer.body, timestamp


@dataclass
class _Logged:
    size: int
    root: bytes


class TinyWitness:
    """An add-checkpoint server on 127.0.0.1 that witnesses the logs it is given."""

    def __init__(
        self, name: str, logs: dict[str, notes.VerifierKey], now: Callable[[], int] | None = None
    ) -> None:
        self.name = name
        self.private = Ed25519PrivateKey.generate()
        self.logs = logs
        self.now = now or (lambda: int(time.time()))
        self.state: dict[str, _Logged] = {}
        self.lock = threading.Lock()
        self.statuses: list[int] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def vkey(self) -> notes.VerifierKey:
        return notes.VerifierKey.for_key(
            self.name, notes.TYPE_COSIGNATURE_V1, self.private.public_key()
        )

    def handle(self, body: bytes) -> tuple[int, str, str]:
        """(status, content type, body) for one add-checkpoint request body."""
        try:
            old, hashes, note = parse_add_checkpoint_body(body)
            parsed = notes.parse_note(note)
            cp = notes.Checkpoint.parse(parsed.text)
        except (notes.FormatError, UnicodeDecodeError) as exc:
            return 400, "text/plain", str(exc)
        key = self.logs.get(cp.origin)
        if key is None:
            return 404, "text/plain", "unknown origin"
        try:
            notes.verify_note(note, [key])
        except notes.VerificationError as exc:
            return 403, "text/plain", str(exc)
        if old > cp.size:
            return 400, "text/plain", "old size beyond the checkpoint"
        with self.lock:
            known = self.state.get(cp.origin, _Logged(0, tree.mth([])))
            if old != known.size:
                return 409, "text/x.tlog.size", f"{known.size}\n"
            try:
                if old == 0:
                    if hashes:
                        raise tree.ProofFailure("a proof from size 0 must be empty")
                else:
                    tree.verify_consistency(old, cp.size, known.root, cp.root, hashes)
            except tree.ProofFailure as exc:
                return 422, "text/plain", str(exc)
            self.state[cp.origin] = _Logged(cp.size, cp.root)
            line = notes.cosign(parsed.text, self.name, self.private, self.now())
        return 200, "text/plain; charset=utf-8", line

    def start(self) -> str:
        """Serve on a free loopback port; the submission prefix URL."""
        witness = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if self.path != "/add-checkpoint":
                    status, ctype, text = 404, "text/plain", "no such endpoint"
                else:
                    status, ctype, text = witness.handle(body)
                witness.statuses.append(status)
                data = text.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
