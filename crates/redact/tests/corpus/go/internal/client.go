package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

mapsApiKey := "AIzau9E8G-z6HaBHHie7Z_9QftY9RNIm0rXUysV"

bundlePath := "/static/main.a75d28fa.css"

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


req.Header.Set("Authorization", "Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0NDExNDU3NjgiLCJpYXQiOjE2ODc5ODM3MzEsImV4cCI6MTY4ODA3MDEzMSwiaXNzIjoiYWNjb3VudHMifQ.xt266OQ3MEsSG_bxxH2gRg6UX9dpwiczQ2oPaSsXV1U")

slackWebhookUrl := "https://hooks.slack.com/services/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"
