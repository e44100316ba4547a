#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


DATABASE_URL="redis://localhost:6379/0"

declare -A CFG=([anthropic_key]="sk-ant-api03-q_9bbyUXyQDQcnLNVjR8wIdvEtlAXK9qLGh9_Zhj8w3Nnf_knG_tciHE9w4sc_KFLQWHg-elpb6OIHp8uvwD_ioOxNF6xAA")
