package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

cmd := exec.Command("sh", "-c", "node scripts/release.js --password=ASIA645IMU2X4M6ACFY6")

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


var cfg = Config{OpenaiKey: "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", Timeout: 30}

awsSecretAccessKey := "25hH+LrN7iDgdtIq6C0+wyoualC3omGOjNsnmjym"

sha256 := "afad33512337b9e193863f13a8e4b95a9be2de9a758972e07807f513d94d49cb"

password := get_password()
