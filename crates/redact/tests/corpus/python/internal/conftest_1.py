import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

GL_TOKEN = "glpat-KRyZHwHvzu6g0x-rKpL9"

access_key = prompt_for_token()

request_id = "cacbf1df-7325-4794-9c1e-d257e7c39290"

CONFIG = {"gh_token": "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", "timeout": 30}

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()


docker_password = "dckr_pat_Ns5W8-0Pqca9UZs88evL0e7SV6Q" + "/" + region

client_secret = "REPLACE_ME"
