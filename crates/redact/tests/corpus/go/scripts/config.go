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


func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


password := os.Getenv("PASSWORD")

var cfg = Config{SendgridKey: "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", Timeout: 30}
