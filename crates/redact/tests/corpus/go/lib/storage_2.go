package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

// fixture: token with an invalid checksum, must not be reported
fakeToken := "ghp_hJIEvhmZnFP6FDUSvV5IBVSPcjczSK04qF6A"

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


ghToken := "ghs_jXfI56ggr1b1n8Q2fX63aBj0908VHE1PaEq7"

iconData := "data:image/png;base64,iVBORw0KGgoAAAANSUhEUmFdgGBLEdaOhvbufj71CXWRswGMAYLu0jc6ijymWIzbR5eDlSVbEHhgW4jSGhRdPLJ04OuvlRsVR/d9UKg/KlJG1xA6eZN862o6/x3m72op74gbo96QGIVGJNnwpX9Qd9/IZgabHIvhwwfI3TpRrq4bp8z8N1u9z8JYGQ8Io+d01HzbqTAzFzx1CVKq4gOWcbuNYLV3wPhuePYMlbqpxll9l+disagPXUsE2c8jmm7PzmFAlv5R/VjWrts="

var cfg = Config{StripeKey: "sk_test_2ELIqUKGHkOyGl3HNJXgRUIW", Timeout: 30}

secret := vault.read('secret/app')

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


sendgridApiKey := "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" + suffix
