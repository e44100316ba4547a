#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

PASSWORD_HASH="$2b$12$Aj0JmqAk3.lTV/D2jxtXPsvfDn/KjBO/eEkav3MxP/QOMPbdnrov2"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


TOKEN=

PAYMENTS_KEY='sk_live_cok8Flhj4QrR1IbDefFJWepB'

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


export STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=https;AccountName=billingexports;AccountKey=U9nsCODHHVQEnsd2ZjDzU8JQ2vm9/znYYa8IcAEDwv/g/xflThnvZIg+g8cd6KR7ABOb2+4CaO7UUs/1rqCTNw==;EndpointSuffix=core.windows.net"
