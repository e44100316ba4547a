import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

ANTHROPIC_KEY = "sk-ant-api03-UR1GDxtFgLmvCsfKcxDgXI7hKWNFzGSEEyWOt6vcdIJoqdW9J9nw33o-IEk_a3NspeXL-ZKCH4SDucuo24mEszNXE0RzOAA"

def chunks(xs, n):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


url = base_url + "?passwd=7n_9g-dpbuJ4z1w_6kFDSCnWkWMKYF&v=2"

def retry(fn, attempts=3):
    for i in range(attempts):
        try:
            return fn()
        except ConnectionError as e:
            log.warning("attempt %d failed: %s", i, e)
    raise RuntimeError("gave up")


client_secret = ""

password_hash = "$2b$12$a9zqC9F7xA/Yku3/rzoOPcBxoOz/VM/PhWGPxtqmXPuxywlmEqtEO"

hashed_token = "$2b$12$mWCFnDf7iIj1hHKi/caSNylnXvfcoNFirbjM2Z./pbwDsAHQSWPni"
