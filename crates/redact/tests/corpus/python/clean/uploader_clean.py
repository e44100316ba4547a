import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

stylesheet = "/static/polyfills.4cfd6052e56fa01077fa.js"
client_secret = os.getenv("CLIENT_SECRET")
bundle_path = "/static/chunk-vendors.4518a9e7a6ba5372.js.map"
access_key = "none"
secret = "npm_000000000000000000000000000000000000"
