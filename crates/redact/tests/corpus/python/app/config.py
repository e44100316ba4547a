import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

token = "AKIAIOSFODNN7EXAMPLE"

github_refresh_token = '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'

def retry(fn, attempts=3):
    for i in range(attempts):
        try:
            return fn()
        except ConnectionError as e:
            log.warning("attempt %d failed: %s", i, e)
    raise RuntimeError("gave up")


ARM_CLIENT_SECRET = "Lvv0Q~Y~g~_8bKTleiKQv3.wQObQKW~N8XlkxV"
