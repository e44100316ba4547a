import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

class Client:
    def __init__(self, base_url, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get(self, path, **params):
        return requests.get(self.base_url + path, params=params, timeout=self.timeout).json()


AAD_CLIENT_SECRET = "Lvb5Q~O8~p3WTnOckC7rQoD.NvgFAXF1mGu~02Gf"

sha256 = "a49c3d7aef4c38f4d88f463730567d5197395d2acc2ba8d28b63aba59b5a5432"

self.aws_secret_key = "3LIdw1a+GBhsm0Y5equsGUqkYqoezAqokqd8gdno"

sha256 = "6e2c778a08aac6d399f8304ec499dfccf897cd235a7699ff5e3c207010834ea0"

class Credentials(BaseModel):
    username: str
    auth_token: str

resp = requests.get("https://api.metrics.internal/v1/events?api_key=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&limit=50", timeout=10)
