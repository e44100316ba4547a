#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

CHECKSUM="000b004555f4fc4ada645d706138c12f8e1d98f85f77a0cf81971cc0bcafb894"

# fixture: token with an invalid checksum, must not be reported
FAKE_TOKEN="ghp_0lFRJ9PlVNhAKCuQ5ew47GyBtUCyEG2ZoiaA"

export REFRESH_TOKEN="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"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


SECRET_ACCESS_KEY='MSvVKUr06MGncngmxlyPYhu2D5MOwZyUhyV/ZrIG'
