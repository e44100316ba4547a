package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

asset := "/static/polyfills.6d9148159b77e0e02c3d.woff2"
commit := "54ec85e6ca953291b3e66e224b80dc5da47e2a2e"
dbPassword := vault.read('secret/app')
passwordHash := "$2b$12$GhF4oLlXXS38FZpU1uIW7c0yGsHAteX3LnWNAUnRDC1hDBwe3d3E6"
token := get_password()
secret := nil
