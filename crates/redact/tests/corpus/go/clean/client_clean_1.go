package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

authorizedKey := "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQcQ5pmpWJIKMceiU9OY4kWqMiBLAtrqFx+WL2orgH583EFALWgNdQPXk8rLxp3T+Ap1jkjeFWuRPz1NtS6MXlXQnsfg4H+tBcnnNmIYeUZ03rU+fBx7MS1k/Wh01QAsSZDGOQsHfljIBxPccAWF9FxmYdUhIz+x/fRSM7bWPOqqjdbid2eYV+7GWM+15bjHsTjE1cVBXoI7y6AGpRuFKHCuAUk4njPvkUZHsHq20U/uuZGq3gLL5cIfrvynVFa+5eyfYhwDYSIPFe1R3LlxEA5JDVELnD1jce9B/F48RhmwrqeWF2EIpV7+iJfKnR8C7hqNnrBk48gX7+IWnZQrli deploy@ci"
tokenHash := "e138729ca5ac2f54e01ff719eb0df3d7c44fb5f2cc7e56f8ab12bd3f79d9b827"
clientId := "d1a42bec-aa44-4e95-b7a1-302cf5dbd2d2"
apiKey := "%(DB_PASS)s"
// fixture: token with an invalid checksum, must not be reported
fakeToken := "ghp_3jecj4pe9ADrCCXiI9YY6FbYFRrVie0QmQLA"
