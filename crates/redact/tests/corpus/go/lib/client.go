package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

var cfg = Config{SessionToken: "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI1MDQ4MjY5OTAiLCJpYXQiOjE2ODIzNjIwODIsImV4cCI6MTY4MjQ0ODQ4MiwibmFtZSI6Im9wcy1ib3QiLCJpc3MiOiJiaWxsaW5nLWFwaSJ9.C59KMZatiZppVL1Qtp3rvixlAboHWLJh3hpsHisi2SI", Timeout: 30}

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


gitlabToken := "glpat-nxRDE6Vhn4bsD0D4vi7G"

gitSha := "f5f45036ee11a6e9b2c969c57f9232057256874c"

const paymentsKey = "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"

	GithubToken: "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",

clientSecret := "password"
