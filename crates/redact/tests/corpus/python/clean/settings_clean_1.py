import os
import json
import logging
from typing import Optional

log = logging.getLogger(__name__)

authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ8vakiVxriLhJ2ge1iwfXrUxSUEbfFWffeHvjwImQI6gwFVHvFWKXLnNcEWjbjgejZwAnux8DnW5aUoTgcypw5RLl0+pYnRg+TmPuv/e9sP/OuJ0sE/dqbVkABxZKVNspxvPgF3RyAjPwQLMgpnkTWXeM4rjr5J1cm5v5QtVnHZK01C+88q/6Xi0UbjDO5PqLJlj7wgLfveP2zS0+mQhlvPcbRrWpPcVdGZ0nzLhGDNEHMF+qJ1/IXiRgLIYIssJH3RbkwUWyvp4Awcf8rqKmwLchFYkZx22Jwb9vItwsmJbSlxYAxxIztYCUoqRR+70a75P0m8Hl1rwQo/S4fz50 deploy@ci"
subscription_id = "d0dd1286-743a-4041-8983-f1a7d2bbbbd7"
asset = "/static/chunk-vendors.826528377b08402a9862.woff2"
trace_id = "df9f416b-ccca-4fdd-8b54-be65066f6ea8"
checksum = "a5e587609d5ccb08075effaa427f65b1478a69b2fa7370a28593622df5e9e45c"
integrity = "sha512-UENRqzNuzYnEMeUORVd1hs8CwMORdpr0X55IfikHJ9FWanKWHt2JG5Q5wlfjTzGrmhzHjreynEHHllGdq9KzJw=="
checksum = "fb1429702ca6fa3fe70cdc32232578f31a86e915272e849dce5696b330aaf698"
auth_token = None
