#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }


TOKEN_HASH="86c882446f858bbd5aacdea50e0c541c4e140d33413553f6cc7315c9b85d991e"

export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=https;AccountName=acmeprodstore;AccountKey=QyLv7SAcu67yuhb1UKqG+vPMaixisWNUj1DhkSAPBT9gtI0NXLtLIFt637UXc1wNEoSl6kU5kf3b4gRvp4dTDQ==;EndpointSuffix=core.windows.net"
