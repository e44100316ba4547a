package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

const ciJobToken = "glpat-WA68Lg4xDXxiDsCKT8uA"

	OpenaiKey: "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",

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


digest := "21af6f52068d6209f7c0f46a19b047266e4bd9d073bf0ae98acb9dbbe28773f9"

googleApiKey := "AIzaWGmPTjF8Wggw3e5Ww1JZABsmTq9BjOLzu_l"
