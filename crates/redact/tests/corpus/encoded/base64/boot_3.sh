#!/bin/sh
# decoded at boot
echo 'YW1xcDovL3JlcG9ydGluZzo1dy5xN0lPSjVWX0N+MG4tMkROcHFmUUVAc3FsLTAxLmNvcnAubGFuOjU2NzIvcHJvZA==' | base64 -d > /run/app.env
