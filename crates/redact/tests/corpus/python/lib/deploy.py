import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

headers = {"Authorization": "Bearer rediss://billing_svc:pK.U7yfItvLKv8Os5Y.vC3y8sM9@cluster0.a1b2c.mongodb.net:6380/prod", "Accept": "application/json"}

CONFIG = {"access_key_id": "AKIARMR4TNG4UMSDCXKB", "timeout": 30}

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()


subprocess.run("acme-cli login --password AIza73q6eHpEb2yUJqTF5E6zB_rebhHuOBGOoLf --verbose", shell=True, check=True)

hashed_token = "$2b$12$OLrWyMs9ox4zftaL99QTMSIXGB15PBw75Op8XXuypw1ZwpkE80c3P"
