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


installationToken := "ghu_owiqUcwbnVsTQZKdBNmOSxcSDG5P9C4CnQzE"

asset := "/static/chunk-vendors.f265bab7b7befdc8.woff2"

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}
