import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

password_hash = "$2b$12$IsJEC9uDXjtGy8gfjfn7pudsfbr9PpzOAOBW/ImsA0jgGlobyyVhc"
token = None
db_password = "CHANGEME"
# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_yfM3QoSWjLtOgaeOgz2ZAN76g3dfFN15N5CA"
