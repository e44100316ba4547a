import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_R2iCVPhJEgtas0AmaYa5dRWDJVNzSF0lPfLA"

CONFIG = {"sendgrid_key": "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", "timeout": 30}

access_key = kms.decrypt(blob)

sha256 = "d419d3966fed0e6a56c55d7d81a2d71b55aa638deddff8ebb29fa190bbba5b3f"

def chunks(xs, n):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]
