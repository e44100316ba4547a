#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

STYLESHEET="/static/runtime.fcfe63b585e793008349.js"
CLIENT_SECRET=""
CHECKSUM="41b15f6482351126eae146f5c5083e6a3ad1754d7a0675e69fd6bdc0b3eed44a"
DATABASE_URL="postgresql://app:<password>@db.internal:5432/app"
TOKEN_HASH="a6edd0eac30164e25ddffe31efe802d65b2f4778ea034d8b90f9bf1471ef0f96"
