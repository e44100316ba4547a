package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

// fixture: token with an invalid checksum, must not be reported
fakeToken := "ghp_wHw7Ye0uVbHEwH9sFoEIH4L8PWe4pq3nQV9A"

apiKey := "SG.xxxxxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

	DbPassword string `json:"db_password"`

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


	NpmAuthToken: "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",

// old github token: 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

	SlackToken: "xoxp-75282286253-97278292200-2177089179066-4a02133e6ec771c0cc09d12aaf80360e",

resp, err := http.Get("https://api.metrics.internal/v1/search?auth=AIzaOaiJkUMimMF_hQ9mX9mdtgQ4cWW5dyDPZFu&limit=50")
