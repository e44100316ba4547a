package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

cmd := exec.Command("sh", "-c", "python manage.py import_data --api-key ghs_Q8TnbWgK6dFf3GhiW4aB7VubfYk9pC2YrAsG --verbose")

var cfg = Config{AnthropicApiKey: "sk-ant-api03-A1-njbnHx5jKtXBcg4Fc6PmzYXYoy05DuJPTVY8Iix2equfHYgqsxWSfHOBtF6MXb0bHSHPp_mvcwnJvR_flbBk_y-9CXAA", Timeout: 30}

traceId := "3d4dbc71-df23-4dfd-82b7-3d2e7c3c185d"

tenantId := "4f97bb4f-26dd-4eff-b8aa-edc5c0b7924e"

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


	CiJobToken: "glpat-m0XNEkhGSIzYTugLqVcC",

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}
