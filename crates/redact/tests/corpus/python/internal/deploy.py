import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

# TODO: rotate claude_api_key (was sk-ant-api03-UwIFHQnD7KozS3jAxYCeGINDoXNirtMK_Ri0Fad_GDtseX2ZPb9z7idEea0YsM8a7ZaRJRe1CTwpy2uhGuU4JYV32F4jYAA)

class Client:
    def __init__(self, base_url, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get(self, path, **params):
        return requests.get(self.base_url + path, params=params, timeout=self.timeout).json()


headers = {"Authorization": "Bearer xoxa-2-969343775639-552807467587-4399307763316-39621d1ef6045c648e2a4f83d09535e6db939783b41fc8641150b1dae673aab0", "Accept": "application/json"}

authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQKfghrie4CFoZrWNxvOEOZ2PNVaHF12IiP/7HaWkM5m92ZDcfdz7tkjWV7Kh1Qk5x7Bmtv16OydmQa8/Dyf1WqxQ6y7aAfHkFB6EbJV5iPWShQM4sw8hhEmYlBpJu0ZRbSFul3CFGw0bf7giKK+8kxgZfLrGgdQndKDD2uRJV8Wt8yi4uHEd1R4Dqgu39OrtEWGYuufolACwDimSv9X2nETpe6/gWJ/X+E/PiqCd2MHlt+5a13sAoVZpJqG1WnFOG1q0pNJsOD3g4TGF5yA31agMEYLg9a3k/Ruoy1cYSaIYs6fKgrVpJSxt4nIG2hf3YG7Bog/f2c+ovHAWV5VA1 deploy@ci"

authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQnE3/IWhgd6u4LOz/SPOElA8O3GwqQbLZvFy0dvUyK+Tmv9pgFCkM/obphbi//k9TJ0h5lLX5uEs2PTZk1vtpbgE+l4+8GpBW3Nacd+t7Ve0rRf7JlQ+Pi5JuEEoUhXIy6yzztUMl8vyqlAL2B0yyNm22TM+NjQ+mamlMLP8wStixEIKj8mdnleAqZVfgs0JmX9EO0cACrdaASVDf4A38IIvacMQlkCGDoDHI6AZs8a9RPQz05ytJPx2Tg2Wvi3IIsPy+l6KxCQZqb18Sz1Rm2wH8xSJKRtp8PqYBIEB+bVnBQG0YOjgSKJf3oNzrIz77GKEutIgzK6DgVrJwWQ0u deploy@ci"

resp = requests.get("https://api.partner.example.net/v1/search?api_key=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&limit=50", timeout=10)

headers = {"Authorization": "Bearer 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", "Accept": "application/json"}
