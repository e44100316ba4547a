import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

class Client:
    def __init__(self, base_url, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get(self, path, **params):
        return requests.get(self.base_url + path, params=params, timeout=self.timeout).json()


authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ44OUrluc5/LPW6PyqS62YU0DzRUTJDomAdk9wv0jpRQyX8wTVpgPDvvX7qIZckCb8B9mh/7jpBIdu8klX0/oXnyhMAXJ9Jy4+Jc7c05gYWGVF5YFmBqFodgmy97Pxd0VQcNZ87nbNSI8mrrBWdOQ8I8P8iF6X5rMAr3jmTQAzCTjUwQ7dslcUaG0IT7nVFliTlTeR9BPs7r5hYBvkpQETUSh68henrbYQwKVo3qgsquv7xkgA0aFBEzdSHV/TplNay2bhYLMaxi2IaxE0SVQgzo9LPbYE6/yV64v6/QDj0qrHyQubnWPvUWlKVzNHJIn6Xo/VRbV8Zl7lfy10IQB deploy@ci"

mail_api_key = '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'

hashed_token = "$2b$12$.xwLg6dXpZzO1W9pTUiN9nWEkp9itYqHZqXmcUqmb1giMVR0tyMbC"

# header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256

self.alerts_webhook = "https://hooks.slack.com/services/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"
