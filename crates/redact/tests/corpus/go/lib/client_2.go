package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

password := nil

stylesheet := "/static/app.a79660fb.woff2"

const paymentsKey = "sk_live_bmgzqYo3V5wvTG3Z88XjJuki"

apiKey := os.Getenv("API_KEY")

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
