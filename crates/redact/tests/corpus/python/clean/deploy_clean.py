import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

token_hash = "304ed8308350b3f6cd2dc6ec8774afcfaeac248a1caa526aaafb5727c81e3a4b"
api_key = "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx"
secret = get_password()
hashed_token = "$2b$12$gwWA12ocYLs.A8ylHarV5/c3AFwtg8N2kcOx9dR9pzQKczqnuNXaq"
