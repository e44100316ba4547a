import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

def retry(fn, attempts=3):
    for i in range(attempts):
        try:
            return fn()
        except ConnectionError as e:
            log.warning("attempt %d failed: %s", i, e)
    raise RuntimeError("gave up")


azure_storage_connection_string = "DefaultEndpointsProtocol=https;AccountName=logsarchive;AccountKey=GmIcYBuXikLJsZc7DgtCzJMPDpI+8i621NQTtUqU4ul/nL7sypfQO/CV4Jy100lN+Lkotkagbzc+RMdAlwAZZA==;EndpointSuffix=core.windows.net" + "/" + region

client_secret = os.environ["CLIENT_SECRET"]

subprocess.run("./bin/sync --password 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 --verbose", shell=True, check=True)
