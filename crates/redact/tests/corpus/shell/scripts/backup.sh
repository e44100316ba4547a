#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

CLIENT_SECRET="sk_live_xxxxxxxxxxxxxxxxxxxxxxxx"

INTEGRITY="sha512-i44jvgy8SdXuAoS3vAfm5VAbbuNlJ3edrVs7sWp1gr1GAoXLf9MKEjralfOxPCe3nBf07fHA67+58KO42s7zBA=="

ARM_CLIENT_SECRET='S0y4Q~wlWBsoel6NF70JWlkD8p1zkD5h-FRw.ne'

declare -A CFG=([youtube_key]="AIzatauRhOmJPCaUo7kFTVHmpvweaXnCkw19yMu")

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


curl -sS -H "Authorization: Bearer ASIAZNEJVCUXYTIAY7M4" https://api.internal.acme.io/v2/status
