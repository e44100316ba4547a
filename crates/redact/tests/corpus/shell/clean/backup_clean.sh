#!/usr/bin/env bash
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

DATABASE_URL="mongodb://localhost:27017"
PASSWORD="example-secret-do-not-use"
ACCESS_KEY="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
AUTHORIZED_KEY="ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQxd06BIbHzUfea9l3M8Bx0YEaQZ4/wMS+llI4sSLiyxs0bCNdgl6gtQh5abOpkKAxavogNKjwA1+wHQ0BOTDajy32Vj8JIwSS8Pk9Uj/x6N0LaKGxBpBADDBe05OP37a2yg2C/jbVvrQEctwGd8OAatjmtzOHW1uvliUUMES8elwsTLEl4mVTc6edTsK/NuhfHDF3f1+LQMAaUbDLAb0LHbMbRt3amdx9uGdoBOt+mdRC/Q1WdAgY3x12Oqhg2+ydHu2/RqlU6U1WsfbTPUT/F9HeR1TFsHQoVFAQJp+do/TAUzI6ibEpbVBM1HZDIsdyOjP2AMk1ANj7iGokfl5S deploy@ci"
INTEGRITY="sha512-ToKusTy1CMnrB9mvtx9hHwNz0lyAbqKjNMTqKQsSFgFIheuqma/eundS+zKvpC21UT9/+n5zsuW1NPeT48NJ5g=="
read -rsp "Enter access_key: " ACCESS_KEY
read -rsp "Enter client_secret: " CLIENT_SECRET
read -rsp "Enter api_key: " API_KEY
