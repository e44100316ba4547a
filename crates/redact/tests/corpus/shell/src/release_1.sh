#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

INTEGRITY="sha512-oyrr5XDR8zF23eA4JMurLfzwZuCciX862I8WKHp10k3kR2w77gLWXdVKaDvcTsTJ5b5ScXnTlB9bqQq63OywzA=="

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done


AAD_CLIENT_SECRET='Ko30Q~55H3eCf6gg8MXNXwHIA6GTAP3GDSHOT'

CLIENT_ID="39f98542-55bc-4632-8a34-dd49b84d6c49"

AWS_SECRET='bFuopHo8bgDCzN1lRerZLeqH8zkSCfN2MNT1xH1G'

declare -A CFG=([github_refresh_token]="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")

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }
