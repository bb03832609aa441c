// Checks an audit entry in the browser with WebCrypto: the latest checkpoint's Ed25519
// signature under the node's verifier key (a C2SP signed note, docs/auditors.md), then
// the entry's RFC 9162 inclusion proof (section 2.1.3.2) against the root that
// checkpoint signs. Shows the result.
"use strict";

(function () {
  function fromBase64(text) {
    const raw = atob(text);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function concat(prefix, a, b) {
    const out = new Uint8Array(1 + a.length + (b ? b.length : 0));
    out[0] = prefix;
    out.set(a, 1);
    if (b) out.set(b, 1 + a.length);
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }

  // RFC 9162 2.1.3.2: true when `leaf` at `index` in a tree of `size` leads to `root`.
  async function verifyInclusion(index, size, leaf, proof, root) {
    if (index >= size) return false;
    let fn = index;
    let sn = size - 1n;
    let r = await sha256(concat(0, leaf));
    for (const p of proof) {
      if (p.length !== 32 || sn === 0n) return false;
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(concat(1, p, r));
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        r = await sha256(concat(1, r, p));
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    return sn === 0n && equal(r, root);
  }

  const SIGNATURE_PREFIX = "\u2014 ";

  // The verifier key "<name>+<hex id>+<base64(0x01 || key)>" as [name, id, raw key].
  function parseVerifierKey(vkey) {
    // Only the first two "+" separate: the base64 key may hold "+" itself.
    const first = vkey.indexOf("+");
    const second = vkey.indexOf("+", first + 1);
    if (first < 1 || second < 0) throw new Error("malformed verifier key");
    const name = vkey.slice(0, first);
    const hexId = vkey.slice(first + 1, second);
    const key = fromBase64(vkey.slice(second + 1));
    if (!name || !/^[0-9a-f]{8}$/.test(hexId) || key.length !== 33 || key[0] !== 1) {
      throw new Error("malformed verifier key");
    }
    return [name, parseInt(hexId, 16), key.slice(1)];
  }

  // The checkpoint's size and root if one of its signatures verifies under `vkey`.
  async function openCheckpoint(note, vkey) {
    const [name, keyId, raw] = parseVerifierKey(vkey);
    const split = note.indexOf("\n\n");
    if (split < 0) throw new Error("not a signed note");
    const text = note.slice(0, split + 1);
    const key = await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
    const data = new TextEncoder().encode(text);
    let signed = false;
    for (const line of note.slice(split + 2).split("\n")) {
      if (!line.startsWith(SIGNATURE_PREFIX + name + " ")) continue;
      const blob = fromBase64(line.slice(SIGNATURE_PREFIX.length + name.length + 1));
      if (blob.length !== 68) continue;
      const id = ((blob[0] << 24) | (blob[1] << 16) | (blob[2] << 8) | blob[3]) >>> 0;
      if (id !== keyId) continue;
      if (await crypto.subtle.verify({ name: "Ed25519" }, key, blob.slice(4), data)) {
        signed = true;
      }
    }
    if (!signed) return null;
    const lines = text.split("\n");
    if (!/^[0-9]+$/.test(lines[1])) return null;
    return { size: BigInt(lines[1]), root: fromBase64(lines[2]) };
  }

  async function check() {
    const box = document.getElementById("proof");
    const out = document.getElementById("proof-result");
    if (!box || !out) return;
    if (!window.crypto || !crypto.subtle) {
      out.textContent = box.dataset.unsupported;
      out.className = "error";
      return;
    }
    let ok = false;
    let message = box.dataset.bad;
    try {
      const checkpoint = await openCheckpoint(box.dataset.note, box.dataset.vkey);
      if (checkpoint === null) {
        message = box.dataset.unsigned;
      } else {
        const hashes = box.dataset.hashes ? box.dataset.hashes.split(" ") : [];
        ok = await verifyInclusion(
          BigInt(box.dataset.index),
          checkpoint.size,
          fromBase64(box.dataset.leaf),
          hashes.map(fromBase64),
          checkpoint.root
        );
      }
    } catch (err) {
      ok = false;
      out.dataset.error = String(err);
    }
    out.textContent = ok ? box.dataset.ok : message;
    out.className = ok ? "ok" : "error";
    out.dataset.verified = ok ? "yes" : "no";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", check);
  } else {
    check();
  }
})();
