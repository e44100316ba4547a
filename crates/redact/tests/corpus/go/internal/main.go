package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

req.Header.Set("Authorization", "Bearer xoxp-50414817167-99165130237-5192283645027-b79f0628b1fd96e4861369d5d7842165")

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


token := ""

databaseUrl := "mongodb://localhost:27017"

apiKey := "npm_000000000000000000000000000000000000"

const githubRefreshToken = "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"
