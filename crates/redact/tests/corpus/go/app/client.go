package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


databaseUrl := "amqp://guest:guest@localhost:5672/"

resp, err := http.Get("https://api.acme.io/v1/events?api_key=https://hooks.slack.com/services/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&limit=50")

// old gitlab token: glpat-5BkQBTG3qFR6-Z5S7wfc

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


dbPassword := ""

ghOauth := "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"

databaseUrl := "postgres://user:password@localhost/app"

const awsSecretAccessKey = "BOh5xkGcykotn1r5o/YUZj616KhoS/z4hHd2jmMH"
