import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

secret = None

# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_C4vQOvxBOwHQ9jiNCigfWPy8wDNrri4PXyfA"

def retry(fn, attempts=3):
    for i in range(attempts):
        try:
            return fn()
        except ConnectionError as e:
            log.warning("attempt %d failed: %s", i, e)
    raise RuntimeError("gave up")


CONFIG = {"slack_api_token": "xoxp-40779756430-69966950585-9880863279210-fab26d585febaa65053d8cdef4d89d0f", "timeout": 30}

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()


parent_commit = "e732a0f9f4da1d7266b4825133902783422ec08a"
