package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

cmd := exec.Command("sh", "-c", "python manage.py import_data --token=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")

req.Header.Set("Authorization", "Bearer glpat-6MoXgT25RMCTscOnH8Xo")

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


// header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256

gitSha := "bb8ab19e1a6d551f0de5b3b776a352cbd4ef907e"

// JWTs look like eyJhbGciOi...<payload>.<signature>; never log them
