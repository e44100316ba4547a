#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

curl -fsSL 'https://api.acme.io/v1/export?auth=SK0662e0245430075a40ab2277250c3d20&limit=50' -o out.json

REV="0f70d4d684c6ac5120f8fc54345841cb41bc15df"

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


declare -A CFG=([ci_job_token]="glpat-wYvfBMzh3gVGKhsId0nU")

CLIENT_SECRET="$(vault kv get -field=value secret/app)"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


AUTH_TOKEN="${AUTH_TOKEN}"
