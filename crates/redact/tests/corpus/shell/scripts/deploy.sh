#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

curl -sS -H "Authorization: Bearer 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" https://api.internal.acme.io/v2/status

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


declare -A CFG=([twilio_key_sid]="SK472c1c2a82f483714012c7a6df9eb21e")

read -rsp "Enter password: " PASSWORD

export STRIPE_SECRET_KEY="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"

SHA256="64e64658353bc5a409ca14cf65eb1bf721b5666982c46cfffdc6e227dad9b300"

export ANTHROPIC_API_KEY=sk-ant-api03-swQXQK1Md0_JXjxy34k65fOR8oS_Q9s_y5qMwUVrFn1EFPK1_E5zP9dz0Nln-TepO_yUXCiOsXceHmmF-RXHD6jAUlZsnAA
