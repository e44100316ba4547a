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


mail_api_key = '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'

integrity = "sha512-QBIfDe/4YhcG58yvkpy1xifKBbU/QwnjGnVdNbYvvjU+tFANzTgRKZo1tQyY8YjzFVuoBPIf1sLRpqZkLrC/uA=="

def chunks(xs, n):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


# PYPI_TOKEN=pypi-AgEIcHlwaS5vcmcCJnbEbYlR80Vnm5SIPis86ca6ZBppVK-2OIUEf_IMTipMlnCMWF6TXki3rCGoNp4Uik9mX2PDfdlKFtvC3DbtqgKDs_y7Ey68mgRuO6UIt6_HDZFV4Ud4pJ9vNMF4OxcZ68pDuqo2bm2sXoD3hjIgJU3XYB  # temporary, remove before merge

secret = "xxxxxxxxxxxxxxxx"

self.github_token = "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"
