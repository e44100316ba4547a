import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

self.installation_token = "ghs_EWoD3rajbSoXl8eEnHGgSLz8MdOXjA1ncRCW"

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()


# JWTs look like eyJhbGciOi...<payload>.<signature>; never log them

class Client:
    def __init__(self, base_url, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get(self, path, **params):
        return requests.get(self.base_url + path, params=params, timeout=self.timeout).json()
