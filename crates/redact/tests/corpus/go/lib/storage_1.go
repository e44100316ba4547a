package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


gitSha := "6acc3f568f9bcc289a5c1184cc07b200a6514a05"

// JWTs look like eyJhbGciOi...<payload>.<signature>; never log them

resp, err := http.Get("https://api.metrics.internal/v1/events?auth=ASIAMMFMYMLIY44W372F&limit=50")

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}
