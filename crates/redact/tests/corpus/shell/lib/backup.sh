#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

PASSWORD_HASH="$2b$12$WoL0NN/0D/K686c7U8JZdo/nnz1VTeTIUSAfSDzAqxt/JbKb/7qnV"

export PRIVATE_TOKEN="Il0TZ767O_BEyw*65lW.mikN*"

TOKEN_HASH="2eaacfe8805cb21d71be39a1377c42186d713ca0cc5efd02994611d49bae2134"

AUTH_TOKEN="$(vault kv get -field=value secret/app)"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done
