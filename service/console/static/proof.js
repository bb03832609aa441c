// Checks an audit entry's RFC 9162 inclusion proof in the browser (WebCrypto SHA-256)
// against the root of the latest signed checkpoint, and shows the result.
// The algorithm is RFC 9162 section 2.1.3.2, as in docs/auditors.md.
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
    try {
      const hashes = box.dataset.hashes ? box.dataset.hashes.split(" ") : [];
      ok = await verifyInclusion(
        BigInt(box.dataset.index),
        BigInt(box.dataset.size),
        fromBase64(box.dataset.leaf),
        hashes.map(fromBase64),
        fromBase64(box.dataset.root)
      );
    } catch (err) {
      ok = false;
    }
    out.textContent = ok ? box.dataset.ok : box.dataset.bad;
    out.className = ok ? "ok" : "error";
    out.dataset.verified = ok ? "yes" : "no";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", check);
  } else {
    check();
  }
})();
