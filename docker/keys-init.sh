#!/usr/bin/env bash
# First-start key set-up for the docker compose deployment.
#
# For each node (kz, kg, uz, tj) this makes sure that
#   $MIGEX_SECRETS_ROOT/<node>/<node>_signing_key   the node's Ed25519 signing key
#                                                   (PKCS#8 PEM, mode 0600), and
#   $MIGEX_PUBLIC_DIR/<node>.jwk.json               its public JWK (mode 0644)
# exist. <node>'s directory under MIGEX_SECRETS_ROOT is that node's own secrets volume,
# mounted in the node at /run/secrets; MIGEX_PUBLIC_DIR is the shared public-keys volume.
#
# Idempotent: an existing private key is never replaced. A missing JWK of an existing
# key is derived again from the key. Only a node without a key gets a new one.
#
# Environment (defaults are the container's paths):
#   MIGEX_SECRETS_ROOT  /var/lib/migex/keys
#   MIGEX_PUBLIC_DIR    /etc/migex/public
#   MIGEX_KEY_LABEL     2026-01        (key id = "<party>#<label>", e.g. KZ:MIA#2026-01)
#   MIGEX_NODES         "kz kg uz tj"
#   MIGEX_PYTHON        python3        (an interpreter that can import the service package)
set -euo pipefail
umask 077

secrets_root=${MIGEX_SECRETS_ROOT:-/var/lib/migex/keys}
public_dir=${MIGEX_PUBLIC_DIR:-/etc/migex/public}
label=${MIGEX_KEY_LABEL:-2026-01}
python=${MIGEX_PYTHON:-python3}
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
done
log "done: ${#nodes[@]} node keys in place"
