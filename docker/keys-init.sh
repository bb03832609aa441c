#!/usr/bin/env bash
# First-start key set-up for the docker compose deployment.
#
# For each node (kz, kg, uz, tj) this makes sure that
#   $MIGEX_SECRETS_ROOT/<node>/<node>_signing_key   the node's Ed25519 signing key
#                                                   (PKCS#8 PEM, mode 0600),
#   $MIGEX_SECRETS_ROOT/<node>/<node>_witness_key   its Ed25519 witness key, which signs
#                                                   only cosignatures (PKCS#8 PEM, 0600),
#   $MIGEX_SECRETS_ROOT/<node>/<node>_kek           its key-encryption key, which seals
#                                                   stored bodies (32 random bytes, 0600),
#   $MIGEX_PUBLIC_DIR/<node>.jwk.json               the signing key's public JWK (0644),
#   $MIGEX_PUBLIC_DIR/<node>.witness-policy         the C2SP tlog-policy of the node's log
#                                                   (0644): its checkpoint verifier key,
#                                                   the other nodes as witnesses, with
#                                                   their keys and URLs, 2 of them needed
# exist. <node>'s directory under MIGEX_SECRETS_ROOT is that node's own secrets volume,
# mounted in the node at /run/secrets; MIGEX_PUBLIC_DIR is the shared public-keys volume.
#
# Idempotent: an existing private key or KEK is never replaced. A missing JWK of an existing
# key is derived again from the key. Only a node without a key gets a new one. The
# policies are derived from the keys on every run (the same keys give the same files).
#
# Environment (defaults are the container's paths):
#   MIGEX_SECRETS_ROOT  /var/lib/migex/keys
#   MIGEX_PUBLIC_DIR    /etc/migex/public
#   MIGEX_KEY_LABEL     2026-01        (key id = "<party>#<label>", e.g. KZ:MIA#2026-01)
#   MIGEX_NODES         "kz kg uz tj"  (a node's witnesses are the other nodes listed;
#                                     with fewer than MIGEX_WITNESS_QUORUM of them it
#                                     gets no policy)
#   MIGEX_WITNESS_QUORUM 2             (cosignatures a checkpoint needs)
#   MIGEX_PYTHON        python3        (an interpreter that can import the service package)
set -euo pipefail
umask 077

secrets_root=${MIGEX_SECRETS_ROOT:-/var/lib/migex/keys}
public_dir=${MIGEX_PUBLIC_DIR:-/etc/migex/public}
label=${MIGEX_KEY_LABEL:-2026-01}
python=${MIGEX_PYTHON:-python3}
quorum=${MIGEX_WITNESS_QUORUM:-2}
read -r -a nodes <<<"${MIGEX_NODES:-kz kg uz tj}"

declare -A party=([kz]="KZ:MIA" [kg]="KG:SRS" [uz]="UZ:MIA" [tj]="TJ:MIA")

log() { printf 'keys-init: %s\n' "$*" >&2; }

# Print the public JWK of an existing private key, in the same form as `migex keys generate`.
derive_jwk() {
  "$python" -c '
import json, sys
from pathlib import Path
from service.protocol.keys import load_signing_key
key = load_signing_key(Path(sys.argv[1]), sys.argv[2])
sys.stdout.write(json.dumps(key.public().jwk(), indent=2) + "\n")
' "$1" "$2"
}

# Write each node's witness policy into the public directory. The witnesses are the
# other nodes, reached at http://<node>:8000 on the compose network, and named by the
# verifier keys of their witness keys; the log line is the node's checkpoint verifier
# key (its audit key is its signing key). Arguments: <node>=<party> for every node.
write_policies() {
  "$python" -c '
import os, sys
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from service.audit.checkpoint import log_origin
from service.audit.note import verifier_key
from service.protocol.keys import load_signing_key
from service.witness.cosignature import CosignerKey
from service.witness.policy import parse_policy

secrets, public, label, quorum = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
nodes = dict(arg.split("=", 1) for arg in sys.argv[5:])

def public_key(node, name, kid):
    private = load_signing_key(secrets / node / f"{node}_{name}_key", kid).private
    if not isinstance(private, Ed25519PrivateKey):
        sys.exit(f"keys-init: {node}: the {name} key is not Ed25519")
    return private.public_key()

log = {n: verifier_key(log_origin(p), public_key(n, "signing", f"{p}#{label}")) for n, p in nodes.items()}
witness = {
    n: CosignerKey(f"migex/{p}/witness", public_key(n, "witness", f"{p}#witness-{label}")).vkey
    for n, p in nodes.items()
}
for node in nodes:
    others = [n for n in nodes if n != node]
    if len(others) < quorum:
        print(f"keys-init: {node}: no witness policy: {len(others)} other nodes, quorum {quorum}", file=sys.stderr)
        continue
    lines = [f"log {log[node]}"]
    lines += [f"witness {n} {witness[n]} http://{n}:8000/v1/witness" for n in others]
    group = " ".join(others)
    lines += [f"group partners {quorum} {group}", "quorum partners", ""]
    text = "\n".join(lines)
    parse_policy(text)
    tmp, path = public / f".{node}.witness-policy.tmp", public / f"{node}.witness-policy"
    tmp.write_text(text, "utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    print(f"keys-init: {node}: witness policy written, {quorum} of {len(others)}", file=sys.stderr)
' "$secrets_root" "$public_dir" "$label" "$quorum" "$@"
}

# Move a freshly written JWK into place, readable by every node.
publish() {
  chmod 0644 "$1"
  mv -f "$1" "$2"
}

for node in "${nodes[@]}"; do
  if [[ -z ${party[$node]+set} ]]; then
    log "unknown node '$node' (known: ${!party[*]}); no key written"
    exit 2
  fi
done

if [[ ! -d $public_dir ]]; then
  mkdir -p "$public_dir"
  chmod 0755 "$public_dir"
fi

for node in "${nodes[@]}"; do
  kid="${party[$node]}#${label}"
  dir="$secrets_root/$node"
  key="$dir/${node}_signing_key"
  jwk="$public_dir/$node.jwk.json"
  tmp="$public_dir/.$node.jwk.json.tmp"
  mkdir -p "$dir"
  chmod 0700 "$dir"
  rm -f "$tmp"

  if [[ -e $key ]]; then
    if [[ -s $jwk ]]; then
      log "$node: keeping existing key and JWK"
    else
      derive_jwk "$key" "$kid" >"$tmp"
      publish "$tmp" "$jwk"
      log "$node: kept existing key, wrote its missing JWK as $kid"
    fi
  else
    migex keys generate --kid "$kid" --kind ed25519 --out "$key" --jwk-out "$tmp" >/dev/null
    publish "$tmp" "$jwk"
    log "$node: generated $kid"
  fi

  witness_kid="${party[$node]}#witness-${label}"
  witness_key="$dir/${node}_witness_key"
  if [[ -e $witness_key ]]; then
    log "$node: keeping existing witness key"
  else
    migex keys generate --kid "$witness_kid" --kind ed25519 --out "$witness_key" >/dev/null
    log "$node: generated witness key $witness_kid"
  fi

  kek="$dir/${node}_kek"
  if [[ -e $kek ]]; then
    log "$node: keeping existing key-encryption key"
  else
    migex privacy new-kek "$kek" >/dev/null
    log "$node: generated key-encryption key"
  fi
done

members=()
for node in "${nodes[@]}"; do
  members+=("$node=${party[$node]}")
done
write_policies "${members[@]}"
log "done: ${#nodes[@]} node keys in place"
