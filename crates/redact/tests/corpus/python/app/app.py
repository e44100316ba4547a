import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

password = ""

# PAYMENTS_KEY=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  # temporary, remove before merge

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()


headers = {"Authorization": "Bearer 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", "Accept": "application/json"}

database_url = "postgres://postgres:postgres@localhost:5432/test"

bundle_path = "/static/main.047d183d.woff2"

API_KEY: str = "nS26w!Tz7xS%5AB-FIQqui.xyk9R5"

PYPI_API_TOKEN: str = "pypi-AgEIcHlwaS5vcmcCJdMUyDKjXWxy6_-mqWW2x3qrUmwCf8Fk09nYpPL7uRfMSPr8597FJo2Z_A2JBzmjF6tF_0PBs8LHb_C-rlUqVVHhOZGwgJLEkNRHA6CVc_BWrXfcPyJPpmTSQByMikkFiPr3re"
