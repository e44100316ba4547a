import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

def chunks(xs, n):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUmBi5n1uBGzKUnbjToP/ba2MVIsSyH41DyllcMAOp3oYwStqlQB1SgA8agYk3oGaRrgVlV60N4pf/AsVfdECHs8/bOS/saXNxUHBU+jhgfaPRuPnP3p92aPqNe1ZPXJYBkiuoURmNQLc4EL9wAXHQnmNxkOEe8v4EeIk4L8hmwiQwpBTOjJUVBB5E1wCPPgqsslVuTriSAjcD5SuA3gQJbpbxvGSDDhvHpS0Vmm29k2jjF+N3Hya42Vzr9ERXFy9sL15JVAYqM0wCA6i968HNK+lAL01MnR1O/L5AIt+Nylrh/ErbqQoh3oHiQO1bvx6wQ=="

# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_5MC5eVhuACMvfcqRXNQHAAiEdqhab10Z3TKA"

def retry(fn, attempts=3):
    for i in range(attempts):
        try:
            return fn()
        except ConnectionError as e:
            log.warning("attempt %d failed: %s", i, e)
    raise RuntimeError("gave up")


url = base_url + "?mail_api_key=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&v=2"

NPM_AUTH_TOKEN: str = "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"

# GITHUB_TOKEN=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  # temporary, remove before merge

TWILIO_API_KEY_SID: str = "SK35c4175ad17184f3ab46332d75b22954"

auth_token = vault.read('secret/app')
