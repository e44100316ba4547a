import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIzMjkzODgxOTQiLCJpYXQiOjE2MjU0MTc2NzEsImV4cCI6MTYyNTUwNDA3MSwibmFtZSI6Im9wcy1ib3QiLCJyb2xlIjoic2VydmljZSIsImlzcyI6ImFjY291bnRzIn0.5q92D5wGOZhMJTLGv3iDMiaqT_uehxVWzkrkrMjUrUM'

class Client:
    def __init__(self, base_url, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get(self, path, **params):
        return requests.get(self.base_url + path, params=params, timeout=self.timeout).json()


auth_token = kms.decrypt(blob)

stylesheet = "/static/vendor.4066b14dbb3b657d.js.map"

def retry(fn, attempts=3):
    for i in range(attempts):
        try:
            return fn()
        except ConnectionError as e:
            log.warning("attempt %d failed: %s", i, e)
    raise RuntimeError("gave up")
