"""`migex audit prove`: show that a message's audit entries are in a signed tree."""

from __future__ import annotations

import json

import httpx

from service.audit import merkle
from service.audit.checkpoint import verify_checkpoint
from service.audit.offline import EntryReader, ExportLineError
from service.protocol.b64 import b64_decode


def prove_message(
    base_url: str,
    token: str,
    message_id: str,
    checkpoint_note: str,
    vkey: str,
    *,
    transport: httpx.BaseTransport | None = None,
) -> list[str]:
    """Return one line per proven entry; raise ValueError if any proof fails."""
    cp = verify_checkpoint(checkpoint_note, vkey)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(
        base_url=base_url, headers=headers, transport=transport, timeout=30
    ) as client:
        found = client.get("/v1/audit/search", params={"message_id": message_id, "limit": 1000})
        if found.status_code != 200:
            raise ValueError(f"search failed with HTTP {found.status_code}: {found.text[:200]}")
        items = [i for i in found.json()["entries"] if i["index"] < cp.size]
        if not items:
            raise ValueError(
                f"no entry for message {message_id} within the checkpoint's {cp.size} entries "
                "(an entry whose search columns were altered is found by `migex audit verify`)"
            )
        lines = []
        reader = EntryReader()
        for item in sorted(items, key=lambda i: int(i["index"])):
            # The entry shown must be exactly the leaf that is hashed, and that leaf must
            # be about the message asked for: the node's search index is not trusted.
            try:
                index, leaf_data = reader.read(json.dumps(item), int(item["index"]))
            except ExportLineError as exc:
                raise ValueError(f"entry {item['index']} is malformed: {exc}") from None
            about = json.loads(leaf_data).get("message_id")
            if about != message_id:
                raise ValueError(
                    f"entry {index} was found for message {message_id}, but the signed "
                    f"entry is about {'no message' if about is None else f'message {about}'}: "
                    "the node's search index does not match its log"
                )
            resp = client.get(
                "/v1/audit/proofs/inclusion", params={"index": index, "size": cp.size}
            )
            if resp.status_code != 200:
                raise ValueError(f"proof for entry {index} failed with HTTP {resp.status_code}")
            proof = [b64_decode(h) for h in resp.json()["hashes"]]
            try:
                merkle.verify_inclusion(index, cp.size, merkle.leaf_hash(leaf_data), proof, cp.root)
            except merkle.ProofError as exc:
                raise ValueError(
                    f"entry {index} is NOT included in the checkpoint: {exc}"
                ) from None
            event = item["entry"].get("event")
            lines.append(f"ok: entry {index} ({event}) is included in tree size {cp.size}")
        return lines
