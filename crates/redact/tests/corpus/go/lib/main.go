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


asset := "/static/styles.bea18c0fa74fd81572e3.js.map"

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


logo := "data:image/png;base64,iVBORw0KGgoAAAANSUhEUo1RY0atGottRBfdPJKPzRB4Wt7cIM2+UDbm/L0flYsuXjzvjyyWw1zzOSKmSvFEiBqpJs17t3Uj7e9ADBf/tsI0WtLrJyiuU5vtYYhW8U37tsP6+Q4Q2s7H4+Z/hIXCmh/MYOd9uEWO2AeZnFV8zbgjYdu7/ps="

integrity := "sha512-DXKZ8bp+bjvabYKOU94lg9zSfD4WneVw4/bIYuYuBCDBU4rYoN3ozy8y/IgXKbzWFBnHm4ioxItN1eyITde7qA=="

azureClientSecret := "7ki3Q~nRnBiK9QDPJgLrzKSS1VvBzDsCqM7_a"

dockerHubPat := "dckr_pat_zYRdpWw33DE_RZLyCwIErEbW6iT" + suffix

// old redis url: mssql://postgres:h5CUfIDTw-X3@db.internal:1433/orders
