package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

var cfg = Config{StorageConnectionString: "DefaultEndpointsProtocol=https;AccountName=billingexports;AccountKey=rqSY1Pk0Oy2yHh/561u++w4AiS7UDWx0lq03Yt4f7+FGSxBKyfSBu7OYci5/oaixBo+/ZBgjKxkjLdWr6/ASzw==;EndpointSuffix=core.windows.net", Timeout: 30}

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


rev := "dbd52aadaf7efadca968ee78317810558a219316"

accessKey := kms.decrypt(blob)

// fixture: token with an invalid checksum, must not be reported
fakeToken := "ghp_e8MZvv2nKKby9p68VQcLCnjKKc73os1DLdCA"

// TODO: rotate slack_api_token (was xoxr-416485494199-4276293874821-66aZOlUhiGcB0g22v8qKt7KH)
