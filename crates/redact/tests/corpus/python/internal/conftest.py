import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

GITHUB_REFRESH_TOKEN: str = "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"

class Client:
    def __init__(self, base_url, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get(self, path, **params):
        return requests.get(self.base_url + path, params=params, timeout=self.timeout).json()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()


logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUiS8Anbqj/JW/LEDxpPBDyEOM5TR2zbCLVrmf4UaW6FokqvyKeA2eX3uPa2Sg0qvmI1YqRNuBH5bWNd/SgQtJW4up1rfPkhqQIfHc6aguADkwrVRM4RvoNjf8eIkGKtsb3UqILdVVoJ55EyXzPjnAwRgNr4HD0nJUy/fvlaD1FfP99VXA0b63rjhcobr6cDIs0M06PI="

secret = settings.SECRET
