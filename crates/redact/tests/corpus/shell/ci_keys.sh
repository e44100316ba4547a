#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

cat > ~/.ssh/id_deploy <<'EOF'
-----BEGIN EC PRIVATE KEY-----
MHcCAQEE1hT5RpNYaa7Hygj1xxovHkCZAlMZaL+JUujn1iDi1u23+K9TzBaHzAzg
ABULAvo6RX6IICdbJNSs+ZxwRtghpnv/pT73FVcDpnnA58xIU5mqgmubkybtSkiG
Qf6VG2tVlteo8XZQh07l2/Pq/GrkbCc=
-----END EC PRIVATE KEY-----
EOF
chmod 600 ~/.ssh/id_deploy
