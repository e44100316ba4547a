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


passwordHash := "$2b$12$4MoVsSTNIWNw8wuVJ3uU.BcGghsuRsU27fDgccD3vWIpYFwhmgi7."

gitSha := "ed3f8933ffebe869688f2c8fb32bc39054e0af6a"

	StorageConnectionString: "DefaultEndpointsProtocol=https;AccountName=logsarchive;AccountKey=Dvo7iFVd4uiglqoIT7+sbcj8VUZJR2oYYffyy+CUyjAYhL02NEMYfHyeKRxS3xfjoXfsVSqXuA3Lq5UfcheCvg==;EndpointSuffix=core.windows.net",

const awsSecret = "bLY6cbdupSa1drtRpPz9lLf/88x2iU/ju0plKKY7"

anthropicApiKey := "sk-ant-api03-gppcS_tDrPZWJ_A5VleCB_RFiehQXKyUuTFfHUvXwkmpUQUxzHnrfp6v8lf1ojdJC0TpAKgWgaSxkwzxwAN-nl8KuuGPSAA" + suffix

req.Header.Set("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MzY5NDE0OTAiLCJpYXQiOjE3MDEyOTY0NjMsImV4cCI6MTcwMTI5NzM2Mywicm9sZSI6InJlYWRvbmx5In0.IekdzpQl1OXqcvUk-4nzaM1o1F41qMDKHF3-njgP9CY")

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}
