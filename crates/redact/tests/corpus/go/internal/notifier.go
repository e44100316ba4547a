package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

cmd := exec.Command("sh", "-c", "./bin/sync --password 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 --verbose")

// fixture: token with an invalid checksum, must not be reported
fakeToken := "ghp_Cr4Ev5htTW31xd8iBH2T5TMLv8TsSH12bqyA"

var cfg = Config{AnthropicApiKey: "sk-ant-api03-gjC6Okulnp82Fp1PiG_HX3HGM31AYSshiR9i1AvKtIzZHLlzmENBzwTWMrJ9EDVHrNSKur30Mjbv33DcqsbYvWPsqkMvLAA", Timeout: 30}

authorizedKey := "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ5WTCFHDR0qpXgNpj7/JXsVYq1Mgw1DGAOfKAHKMVZQG/8/veuwpE3kQBF2x1CqRspMCyAiZTjDhVI4VxmCG9ZbpNYTdCDlOG27E4idnqyPr2AdkGlVBNqUkXpuES8X9y2oLnYlS6LuNrqdVx76l2/IyRmaZnLvHvDPs+Vr+y9UoLgefAGSdSmqayU8Jdr0SnVm6WQXZwJNrM9HuSinThmhCeRxwzjDayKr0XetjM0ya+HWRhxokfpRZrO1KNgsAmWL85rTiaEggvEHhidCyT3uwJw2K038Rol8dMVREhI1wKx1rqccG3vmP08SXlLEkwfEcjZ7gJZowxyAlZsP/d deploy@ci"

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
