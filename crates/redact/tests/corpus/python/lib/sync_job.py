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


headers = {"Authorization": "Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI4MzMxNzA5NjUiLCJpYXQiOjE2Mjc0NzI0NDYsImV4cCI6MTYyNzQ3MzM0NiwibmFtZSI6Im9wcy1ib3QiLCJyb2xlIjoic2VydmljZSJ9.OL9z4E4BoZgnAIsoJDC2g71d8leYkimZPBAY5FPcemg", "Accept": "application/json"}

database_url = "mysql://root:${MYSQL_ROOT_PASSWORD}@db:3306/app"

integrity = "sha512-M5ZTgOQCAbyVYde6tco8HxwdRgvJMr0XPMYD4Dc9/HOhvxcUg47OjVFgRFLuODbH9SYQkVAzUCZI3dU5hWjltg=="

authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQQjpYGCsRbax1CSCQVK+QdknrzYXl8nY+T6QBxc2SbRA/+A+mtP3tYFQoord8FaAvF0/lNM6D69wy/IedW6WGEEz4cRCjvv3IJCjji1+kpjs7aDN/PiG61kx1Vdbwl8tZ3waLmaugaFCUInBx3CU7RmmSz0q9uAHFVsaz0zZdTP/PtJawBZvWFrtQVPv1waiJLRYl+eLJzKTa6mWbGnmdwpRJLYNUFxzDv2x0Hgc8PZuPVcw9/cBJoh3knpJeTq/QMP31h39V9O250Of8Oh3OBjSvWCIC45GsX7Nb5/7PA2arIYPko9O7qcFv89Kw6ncmtaHRNMWzj7ngsTNAtjR9 deploy@ci"

self.master_key = "OR0IkhTm8gdU.me!rnDrkhqoRoYoz"
