#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

export API_SECRET=tON84MDUkIHhpT5NdksWMIEW

PASSWORD_HASH="$2b$12$.E0xfrpy9B94b8THTScI0GMkEeWKMExP/7WBCMvoOQgJiIAo72INa"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


SUBSCRIPTION_ID="ef6ece49-8745-49a6-acce-e591ce4366dc"

PYPI_API_TOKEN='pypi-AgEIcHlwaS5vcmcCJvWvZLGRUm4GMwdakaB1u9eNGSqh6b0h4ip9WEUt4ri2LpxmNVmaXm2zK-AHbo-HKLezBXAfrOzW7qCJirSf5pzwirLUAJI4arxnr2FKMS1g5j1W27YVDKF43uaHooDOTCK9ECiElhZLg'

DATABASE_URL="postgres://user:password@localhost/app"

TWILIO_API_KEY='SK4868bb9397fa90eff850edef1f311a55'

export GITHUB_OAUTH_TOKEN=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
