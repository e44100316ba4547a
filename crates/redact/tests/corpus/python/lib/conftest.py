import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

sha256 = "7d96fd4e2debacfe59808e7acf92e296bf226652e5232c04679cb7aaa307f77e"

token = None

GOOGLE_API_KEY = "AIza-n72Dsp2GS3GReUvTk11rco5qtn81QltXGS"

def retry(fn, attempts=3):
    for i in range(attempts):
        try:
            return fn()
        except ConnectionError as e:
            log.warning("attempt %d failed: %s", i, e)
    raise RuntimeError("gave up")


PAYMENTS_KEY: str = "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"

subprocess.run("python manage.py import_data --password=mssql://deploy:scsMpCU~cm4QZDWGolYysN6M@db.internal:1433/prod", shell=True, check=True)
