package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

clientSecret := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"

awsAccessKeyId := "AKIAE3N3WVDLO5524V6X"

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


secret := os.Getenv("SECRET")

placeholderImg := "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgkr0ZaWcN86HfyzJK495zla2RFgxBAliM7Ul1qpanTVhUY6sAHg4ZBmDe/pp5MMnikc1oqxWgJrpK09l29pEEr7K3DRE5evsIRUnBPRDSDlq0wymgo12KtjPQcU3zneZR+5c+UsNbZqngTJTJTipjt6YVs6lyA2k4Oy/AuzDOyWc+2bocA3/ku5ARAutFZUOnr0wAPf/5Ng0cymFMsXFyXQ1u2YB5O2q3m6zQjX6J1zPQ=="
