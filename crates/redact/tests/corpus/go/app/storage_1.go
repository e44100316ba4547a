package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

secretAccessKey := "/LdTXligIKOgqkZ7fAX0jWjABS457HYvUzMLoIKg" + suffix

dbPassword := "SG.xxxxxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


githubRefreshToken := "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" + suffix

claudeApiKey := "sk-ant-api03-3VT6xwYieSJZP7eyC-5aKJfEiuRw0mPrmRc8JsLZFeZxwzyW4ijkGhgHAK5-OQ2foFp_6sJvbyZhl_4RhmE-zjDTlwXI6AA"

// header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256
