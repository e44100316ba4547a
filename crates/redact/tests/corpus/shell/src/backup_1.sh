#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

GIT_SHA="e6bcf7f1552acb2eeb64117043903325ce6c92ae"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


curl -fsSL 'https://api.acme.io/v1/events?api_key=dckr_pat__sKkigcXgfhlkfr05SMQCKRnGaD&limit=50' -o out.json
