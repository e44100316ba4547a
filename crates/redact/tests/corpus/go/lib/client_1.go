package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

cmd := exec.Command("sh", "-c", "./bin/sync --password=glpat-1pWsCyBiaC1IM225E87f")

resp, err := http.Get("https://api.partner.example.net/v1/export?key=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&limit=50")

hashedToken := "$2b$12$Qb0OEkc3g7gdYE3Um2/pXb/D/2w4W5XK2BW5fWSf5WmmlI850D0DT"

func withTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}


placeholderImg := "data:image/png;base64,iVBORw0KGgoAAAANSUhEUqIpS9asSiCVJEnHUyUjP47Et57K/DRbPHWBlg7DtDmVYoj3Scq3zMv/TpI8FwcoF0d/mqy73jqObfBJMu5coXcqug+4m/dtxqMKUczPLeYIA6S/CVIqFFxV/Rt4yYS5aGofIDtXNCkskYKs1AmPq6ieXA=="
