#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

API_KEY=""

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


CLIENT_SECRET=

python manage.py import_data --auth-token=ghu_37frqwkHKhnM0rYjI5ltyNu1yUBwzj22ioba

curl -fsSL 'https://api.partner.example.net/v1/export?api_key=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&limit=50' -o out.json

export GITHUB_PAT="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"

export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=https;AccountName=acmeprodstore;AccountKey=nUyD2Zdpaxgk5AlsoFcgx6HV68vbnHKLrhZ+jsG0Sy51i4hVisKsOVGbyPjGX0KTyIUfAy5mohRyVvOy82W2rg==;EndpointSuffix=core.windows.net"

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done
