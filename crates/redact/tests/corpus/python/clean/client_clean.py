import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

auth_token = "{{ secrets.API_TOKEN }}"
stylesheet = "/static/main.3c3cdaa9e545fa22.woff2"
# JWTs look like eyJhbGciOi...<payload>.<signature>; never log them
# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_5yrjRe0c8aPxYZJGOWZIQpNVSr7LX60PskdA"
# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_jVODSuBIzmf69cHbtO7B55OKOnlrLW38AUkA"
password_hash = "$2b$12$H.e9hVFx1fPPwo.esuzMlDY2s0AVoyQ389dA/sfRIB0i2xGvG1uWN"
tenant_id = "5844225c-3503-4762-9852-aa36d270c991"
password_hash = "$2b$12$fjIhcDs4hD4RYLlQ50CEx6B/U1OzM2fxg15TzgTgO2Fe3aFQJj9Bc"
