#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

INTEGRITY="sha512-wzQBFx9WabYOfCe9Gmvkz1K49pzOiCKKjaqWmIAHvUq9gKL5fXuj/GCEcqqQdeejR7eQXDqNL0FUD+GTeTMxcA=="
INTEGRITY="sha512-Ev5+xPV4/bjBRGnbgBh9djQrZSaE/bK26nReTyRedvQSnYK+FuXKewrjicAfnBS1cVKsOAgI6YxqWhpAOCHe2w=="
DIGEST="fc1903bf3d8a187679a393cac732589106001861f60ea0afeda633f9f9466777"
PARENT_COMMIT="101413020823bcf535f2a827ad960d9f9f174b3a"
ACCESS_KEY=""
AUTH_TOKEN=
TENANT_ID="7c527ae4-5d94-427c-a9d3-443f1b64f94b"
ACCESS_KEY="$(vault kv get -field=value secret/app)"
