#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

export PYPI_TOKEN=pypi-AgEIcHlwaS5vcmcCJCMTOWYyZTpmC7Ujgngwed8zzLNrF53ekDyB8fzsR6MzomAC75hQpcVrOEuK1f1kc_CwyIWKw86LIiaMvjALvwecOTp-8CB7ST4KatZNsPP82JZn

export AWS_ACCESS_KEY_ID=AKIAQXR5BQKVJALCH3RK

export SLACK_TOKEN=xoxp-89022634239-24284124995-1386882098993-c515b77275429e34f504bcbd20a3c108

PASSWORD=

PASSWORD="$(vault kv get -field=value secret/app)"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


DOCKER_PASSWORD="dckr_pat_rrlc18Uv4ffBfnETQGb-XYoxMHS""${SUFFIX}"

CLIENT_SECRET=
