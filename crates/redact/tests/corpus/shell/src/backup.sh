#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


export GITHUB_PAT="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"

curl -fsSL 'https://api.acme.io/v1/search?token=dckr_pat_XvtbLIGR3__cRWjtpTc8PEkaIMN&limit=50' -o out.json

INTEGRITY="sha512-opX/7COtNN+gy/yg70vwJ68nR6sqUDCr9gPAKFQt/MBkPVP+aFhjbAWgFqpwQ50Dvc81Sd505lJJRQC+lZlfwQ=="
