#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


TWILIO_API_KEY_SID='SKa77f06ed9cbe91a9d7fa3430bff94524'

AUTH_TOKEN="${AUTH_TOKEN}"
