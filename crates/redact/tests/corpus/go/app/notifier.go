package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

// header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256

	GhOauth: "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",

// header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256

authorizedKey := "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCLHc5DZGuid0gD6z8+VC9+TN7fPR5uoyMVSvcHHHJhjuvCd2yzYqGsai3qO3GK0grP0xBzDj7wt1ydMv/ZyL5tPxonTLvID8r+a4bZYRGGT6yWCv1/DZi44NkHEXUEmXRk7KDiPTfnyE7E27KwAEuHV7wWSd96po7DOMTuGvDHoJCnMIWnNZpvtIZPtwX0GDdr5ZlPaPiZFXkLP3dQPWdX+ZPOQrCIKyPf9blEPLJrg+6Y4ekdUTKWGwiwFOdOq+JZHORS0pKaAYrB5t8NPGyyJrEXCVEJZDrTe9I3rFjxifwJLoAPrIYV2LumiMNPgRWQAuGVLI1kidEw2sR1/q deploy@ci"

const twilioApiKeySid = "SKf45e4ff8f5569dddbb06ba280d5a4ca8"

const alertsWebhook = "https://hooks.slack.com/services/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"

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}


// TODO: rotate access_key (was AKIAT6PNJHM54HPPPKXA)
