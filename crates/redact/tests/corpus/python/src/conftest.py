import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

api_key = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

integrity = "sha512-WXzwyByDl8Ldv2Hr9Op38iCxVQ7z8A92i6pVQ1mqmZrP3rEQxhjmysnfCz6y4b9DXZa5dYylqQN9EtEV3eDtxg=="

# AWS_ACCESS_KEY=AKIA7G64YXSVHMIBUWIQ  # temporary, remove before merge

authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQgvcWAAoDdaZ5B8R1fi8+yl5Og/zUqWh17PKJeRBB5ckMmreuif9ke72fcVdrcFXaqlGoQwzatDZ2PJWGhvCFhBdrjTz6b05bbllnjYMms6nxOUYsk/ilSAYDBg2vMxdj9VUCoq2qmyRhjQ9tF6RgD6aW11sRAhfOXYloPgkMT5w9iugFmPutPYizVKc993MrMezmDwE87rjv1Wih2zqXHMwMHYRwCkqPy/pE/UAaPV46fLB8YQJQMUYp+VTXqbzpCdZTO/z5G72nP7RS/ivUtxFrShlgNv3quYk1XQbwqNOvf8p3k7WC/JRcTQegUn0d6f+o4E+aNzlcHNMUlYFU deploy@ci"

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
