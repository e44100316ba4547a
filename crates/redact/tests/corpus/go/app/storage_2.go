package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

dbUrl := "mssql://api:ZsmQqmLvFJAPacKEh.Y7@mq.internal.example.org:1433/0"

asset := "/static/styles.c1f90a06d7e30619.css"

bundlePath := "/static/app.71147e19935b8821.woff2"

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


const stripeApiKey = "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"

passwordHash := "$2b$12$kPwWBcssko3JDJFKKN5ccB6Nf3PPQEdwk/UBxbSt7gUnKZaR4s5lX"
