#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

PYPI_API_TOKEN="pypi-AgEIcHlwaS5vcmcCJ6dynmsrW45w6dBJQruRKQTfBE-B6DF-BC-Ugk_kh-iYjTtD8lCrJclkxLUWpuUkDI7H""${SUFFIX}"

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


# fixture: token with an invalid checksum, must not be reported
FAKE_TOKEN="ghp_F9QSV6a3Cl3xmzgqVLefoFFElPI5pG3ETXaA"

export WEBHOOK_URL=https://hooks.slack.com/services/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

DATABASE_URL="postgres://postgres:postgres@localhost:5432/test"

SECRET=
