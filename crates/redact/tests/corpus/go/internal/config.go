package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

var cfg = Config{GitlabPat: "glpat-V4esDoxJX0EstNAzK1z4", Timeout: 30}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


	SigningKey: "bx6f5El4gO.E*0^uB70M1",

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


digest := "435dc472a4591f71b182cef26a6cbc59917b983628c22302a9b6f1c5d37fc612"
