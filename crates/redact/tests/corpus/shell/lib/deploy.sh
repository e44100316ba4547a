#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


read -rsp "Enter db_password: " DB_PASSWORD

MASTER_KEY='iI5CvPUt2dIC41aS'

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


GH_TOKEN="ghs_k0rGEHoLwXB50bGHVvYBMPNaZzyDoB1EA83J""${SUFFIX}"

deployctl push --secret postgresql://deploy:f7~W7xR8PsfoS6-Z5XSmzuQ@mq.internal.example.org:5432/analytics --verbose

declare -A CFG=([anthropic_key]="sk-ant-api03-UUheoi7nb4ZKwkcszcUW0CHXhZYvVyIQ4AtNwx6qOYr5eRuoK7AGvukKCDcJ73g0IkXngo0WeZj4aRHtTvfvCOetdCz6rAA")

DB_PASSWORD=

ACCESS_KEY=
