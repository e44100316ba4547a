#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

export GH_TOKEN=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

export PYPI_TOKEN="pypi-AgEIcHlwaS5vcmcCJAKQZsfKCWmFr80jwM4QawjnMZTonSzk2GH509OhiH87ozIzd7918d7Mh96rbwv7RQFvSohB6N2RtvGL_buUncldB2-AqPjUvIEWIRRAxZ7yhsc7GkJS538z5bf"

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


read -rsp "Enter secret: " SECRET
