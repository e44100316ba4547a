package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


githubRefreshToken := "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"

mailApiKey := "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"

// fixture: token with an invalid checksum, must not be reported
fakeToken := "ghp_Yw625d3IfcSq1hb7oXzWZ6tZqWZ6rz3beaLA"

twilioKeySid := "SKeb8b98d2f9341fa20e8f484147e0f89b" + suffix

hashedToken := "$2b$12$woZGXIp2j3jbjXCux7rgdkY2f9ntTCZwx6GQXnNwxxu2vBrYwavUZ"

logo := "data:image/png;base64,iVBORw0KGgoAAAANSUhEUqIUBdyDgzxArbvCgcGO36dSgmxv32ZAhGywn+3YL+gdAcP2335IdcjLJqFOstF4j9OizCQ7QPJGCKeKXZ8+BGS8LqnglfEYak9xsdyxzQ4E6IRKem60J7LVfs3EpTqpv7fzuXqU5+6t9LsqLzsFGLP7tmdeNqMdDTMb5YTjzrB2lEBv1XzOSzjfO3dxFz8TWW7ZOXujowdBas8CbSmGsrd20lVE7VMe2bcweVPDlfQmvlGhvSacGg=="
