#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


export AZURE_STORAGE=DefaultEndpointsProtocol=https;AccountName=acmeprodstore;AccountKey=G9VJHyxp/oholDwACn9xuuRhi2199Ozbmrx3m+SNzYJW5GSDSlfXSsfd28G7miyhQ7Q7HS+osYFkbVSDTexPwQ==;EndpointSuffix=core.windows.net

SECRET=

curl -fsSL 'https://api.partner.example.net/v1/search?api_key=https://hooks.slack.com/services/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&limit=50' -o out.json

TOKEN='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'
