#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

ICON_DATA="data:image/png;base64,iVBORw0KGgoAAAANSUhEUhQRaUosF0xzniozPsu4q2X8OLfFJCMF/Ce5ZpymYVBnOAhpXf6gkYjfITO5Uyn4VFQx2iyDY9fqqSWBH/HwOffMsC5Ylxzj0ap22U6qmcCg2mC3m7PGx1WJV/gTYktyw9iutBPHqWRQ7TJV6z/SwllLAwl953mHjzdEwaYSp8vM3Hs="
INTEGRITY="sha512-RVaF3Zy96x4iXsl0+LgWZrT+xlFLBefsjfZD6uMS5MoJg+YqQQ1bRyoxx7ZelwTWFVNpY4muUx3btbOpPJ45aQ=="
SUBSCRIPTION_ID="ea35f881-e3e8-4d2d-8e9b-f40edd4ab73a"
DB_PASSWORD="<token>"
# fixture: token with an invalid checksum, must not be reported
FAKE_TOKEN="ghp_Qbe7lvnBp472fZqzFwGQpYAbj10Gsa0coCAA"
INTEGRITY="sha512-Nir37kvbMayqnTgsujA10TB87n2W9e1miEL5ueWhdnSqN9o2zHQEM1R5GLhcAlCpcd7jZT6UODOI42uwotJRDQ=="
STYLESHEET="/static/main.afe0056e679d586199c8.js.map"
