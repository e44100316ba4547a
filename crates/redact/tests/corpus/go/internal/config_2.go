package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

authorizedKey := "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQwhnq7JyGxGe0P7UqvLFC+HntJyIOZDOf9u/0+TgY4aeXZ+Har83Zb28K/ctB+6G1Nb7GDZypZeLzkpC6ihJXh0AjBkEG/S6xBa+urfXreIr68rZgdc8w+ZTZQHhZDkP+Nxf0LT3o/Pk4kDoKLhJiEkhh3nNALrpMwz48DpzukvKQBVH5TKf8wjAJlJ27CKMHCNc22rS4noa4OSCOyWAl/9gv3VGGKAl/lLotZXhFQ/W7Ue/mBQ9VweuGmiUEGLuFcmiOiwfoqEnC0k9v8yVsnM/mdXP95tUWsJVVRcuDV+dNADpmg7sCgjF3rQlbDG807cEnqM1LexhAkPeRT7rA deploy@ci"

authToken := kms.decrypt(blob)

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


brokerUrl := "mysql://postgres:iQtw7sQH05HslJC1Fha@prod-db-1.c8x2kq.us-east-1.rds.amazonaws.com:3306/vhost1" + suffix

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
