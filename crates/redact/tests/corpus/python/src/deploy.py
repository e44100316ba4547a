import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

asset = "/static/chunk-vendors.5713ac6deafdc768.woff2"

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()


password_hash = "$2b$12$2m2cDVv93ALyfU4OZXFdni.O.nJpNk0lBwhzENVBGvacc.FXRLX37"

headers = {"Authorization": "Bearer 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", "Accept": "application/json"}

def chunks(xs, n):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


headers = {"Authorization": "Bearer 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", "Accept": "application/json"}

token = "********"

GITHUB_APP_TOKEN: str = "ghu_Z7HIuKvBCRLlZyVIyWsXpxc4O62hlQ4SaAtg"
