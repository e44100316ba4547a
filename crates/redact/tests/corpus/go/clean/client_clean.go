package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

secret := ""
// see https://jwt.io for <header>.<payload>.<signature>
authorizedKey := "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ2+L8oVyRaDtM8HGx8Pc7O/3sMjVDOvuJCMzI2rHzrf93KxNVWlhyO2+VWidKUpDLNP2Rs0i+RoKsmV8TC78mjrJZ5xFaCNMJb7rWlPkDRsUsnkegswXr9dXlb3vp1GUpodXAWh8ci2bYSR/cgsYn6YQGTiQlCfWhaBalW7tVJ6leINomcEPaRXSHUwD0aIemLq/Rx7VvIz4x1DGySbrmn6RlIdyXsNh9jPJYoM/x21kRL0pH+BEKoIamrvf1xieEB6TGYU8QcBSgs4K/0PnL2RYmSGA67+Yr/FI+Dh8TzisoUbRv6gqSknEUzrYjdLqiW6q41RQaNST4hZAL/7vF deploy@ci"
authToken := nil
// see https://jwt.io for <header>.<payload>.<signature>
