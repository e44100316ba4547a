import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

url = base_url + "?openai_api_key=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&v=2"

token_hash = "3508870737193022e9d637e3806303bccecac8fb1d2753d6ca8b22056c9e07cc"

def retry(fn, attempts=3):
    for i in range(attempts):
        try:
            return fn()
        except ConnectionError as e:
            log.warning("attempt %d failed: %s", i, e)
    raise RuntimeError("gave up")


headers = {"Authorization": "Bearer mssql://postgres:VVrHvlwpn4~~zFMIg3bD-gMStnEv@pg.acme-corp.net:1433/orders", "Accept": "application/json"}

self.refresh_token = "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"
