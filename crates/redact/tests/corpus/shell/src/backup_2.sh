#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

CLIENT_SECRET="${CLIENT_SECRET}"

ASSET="/static/app.76ed591b0b89cbc117fc.js.map"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


curl -fsSL 'https://api.metrics.internal/v1/export?auth=pypi-AgEIcHlwaS5vcmcCJlm-U5XcTXaDfUXrSZByIKlIBKG698t1LdOgci0AI3bva11eKcQeUkuj6AqZy7aesc&limit=50' -o out.json

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done
