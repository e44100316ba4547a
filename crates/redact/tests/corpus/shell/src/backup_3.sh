#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

export GH_TOKEN="ghs_PSaqEiU2CDjuFnwUqEfyOdkOb87VsQ2z0Bhh"

HASHED_TOKEN="$2b$12$f92zO0iBFbXMPci1eM2hyztUW/o26hDpx9IRHZtD2NSYqW6xmnd82"

export AZURE_STORAGE="DefaultEndpointsProtocol=https;AccountName=mlartifacts01;AccountKey=qSlmVfB1NSGbH6RDKa7QRURCDvJX1ypesYXQqnYV280FGa3VFRir95dPk9+m5QsOdaZGK9uqYQaesrWVGNGlkA==;EndpointSuffix=core.windows.net"

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


SECRET="placeholder"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


AUTH_TOKEN="your_api_key_here"
