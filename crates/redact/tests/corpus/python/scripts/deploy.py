import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

def chunks(xs, n):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


def login(username: str, password: Optional[str] = None) -> bool:
    return check(username, password)

self.npm_auth_token = "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"

self.auth_token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIzNjk5OTMwNjciLCJpYXQiOjE2Mzk2MjI4OTQsImV4cCI6MTYzOTYyMzc5NCwicm9sZSI6InNlcnZpY2UifQ.cGTqXoDN88dgfPjFaBUyIlmZGT9zbY-29vOXLSDQtHs"

self.mail_api_key = "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"

CONFIG = {"signing_key": "IM2ydSI9fRvl3k5HhcRrxUOV5!D2Fq2", "timeout": 30}
