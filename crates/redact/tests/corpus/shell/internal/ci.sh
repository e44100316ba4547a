#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

curl -fsSL 'https://api.metrics.internal/v1/events?key=xoxa-2-922671207040-182373397845-2376677121296-7064a977406097ac59df587d901301c4d4f2e94c3f1990c6f527f3ca174922c8&limit=50' -o out.json

TWILIO_API_KEY_SID="SK2964035131ac4cb3ecf9353b82f18399""${SUFFIX}"

COMMIT="dc6bec9b574d49ad3182c25ad1cee3c1ef0eb13f"

ICON_DATA="data:image/png;base64,iVBORw0KGgoAAAANSUhEUg/E9lpjqqOlK0XDgkqnTArdv5I/ryvA8sn/JX51CvOyTcap0HAcXVN4PXCwhhK8+IawCCpT7rX+wj/kj2twexOH7Ys2J6qJPPU8UuZGDqC7p/Beqipfz0Rko2GtY871E7rGVsJXmkc27a9eve1Gk6YbaENnC7/a6wEHK+kgnT8qeXDx8zmcoQzFibmqbqzJUpK38wDqkxwx1KRZ/giJMiEDz7leuS4BRCGDV8fEtQU3SL7IAS51F1c7+z9PnbV5ObVAfG+OtM+rVVEpD+5sXVnjM2Jdgg=="

GH_OAUTH="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""${SUFFIX}"

COMMIT="ca6f1667d02a004a6fab3d49abbf0a875bf77ecb"

export GITHUB_TOKEN="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"

for svc in api worker scheduler; do
  log "restarting $svc"
  systemctl restart "acme-$svc"
done
