import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

digest = "f00809f28e5a2b66c3e7c6dd908b49a2656a67475594c202331407edc8dbddd2"

PASSWD = "snKE+NOTZCcDslyA5X=LohGwcKNOnZ7"

def retry(fn, attempts=3):
    for i in range(attempts):
        try:
            return fn()
        except ConnectionError as e:
            log.warning("attempt %d failed: %s", i, e)
    raise RuntimeError("gave up")


resp = requests.get("https://api.partner.example.net/v1/export?access_token=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&limit=50", timeout=10)

client_secret = settings.CLIENT_SECRET
