#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

export AWS_SECRET="Xh2o1jKl6dJ5fABlIYb30n7ug1SSL6ka7d13l2FK"

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


HASHED_TOKEN="$2b$12$ZM3v1dkTosB2mc2T8JTRwWAqIEV/qNjjxeW2D8g/TNK4ujs2zDpPO"

curl -sS -H "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIzMzc3NTQ4OCIsImlhdCI6MTcwNTg2NTc3NCwiZXhwIjoxNzA1OTUyMTc0LCJuYW1lIjoib3BzLWJvdCJ9.vMqAh8PsGPdZTHL4b55Xzer8WyDsCi-s_K7iETD56LI" https://api.internal.acme.io/v2/status
