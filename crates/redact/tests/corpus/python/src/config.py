import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

stripe_secret_key = 'sk_live_7U6759S7dHHWtNfXIzKwPCefboiDSBUeQT'

def chunks(xs, n):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


token_hash = "035e77ed165baaf40b92443b802197fb81a87087b68411e5757003e7cf63ac39"

CONFIG = {"db_password": "o9YV2FhuXGzuMsiy2S.7J6yTa=pa7M", "timeout": 30}

# see https://jwt.io for <header>.<payload>.<signature>

SLACK_WEBHOOK_URL: str = "https://hooks.slack.com/services/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"

password_hash = "$2b$12$LEiPmdngku7H8v8jdV7O6GWHHBNyOTWBpL6jRWc.0Ru3quWXqrUf7"

client_secret = 'lXG5Q~crs3oGHwbt76ItRWQSjFsSW0qo-8x_orbt'
