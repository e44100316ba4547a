resource "google_service_account_key" "ci" {
  service_account_id = "ci"
}

provider "google" {
  project     = "acme-prod"
  credentials = <<EOF
{
  "type": "service_account",
  "project_id": "ml-sandbox-3201",
  "private_key_id": "43f516dd8356700e1eb48b48b4750a4d52b04cc3",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKdzDLuL/TYq1XvVa/eN2z5bj19FqzVs\n5Klzhb59Fqwc9em80QInDqWd7szPdHl0uFfQcdP8WJHYgrtcKxHalcZi/dv+0DCW\nRqfiEHGgGzGkdwK6g00pYOk4Pcwl3ykGr+U6ZXsCmH2nSuX01YsXfHyxwjVjf/kT\nmFlJyLiwEFhtt2Gv2yE+Xxbpq0kng95CQw/N44Y/JXuh0nzXCikhG/5iaXpyARjX\nCTrtvtds5B4EINL3iNfv/aE9nPCjeBiYRoSDM84Y/C9Rsya4KLTr8tiUrA/RS75V\nKHfEE9u4WEcTVkaazxxQu3aZyBExRgmD4VSeJUqL3rTcPX0S9cq33rO1tlNC2MNu\njJJjf64VZNqdmQnYLYNZqi/UBf09n94BsIjkZWk2hZLTZKG3byDBE6AnwCCaasJH\nq2oYQvfVrkrQIR/R1+DeCOSKst6nB9yetOLnYYlXiVjC3Ar2h8y7vev/ogi1bQ51\nrDmkURIcL0/RUE7Uuy11JzXA5MP95rC9VUOdm6/Kzl01QOIbdTHIJ9xby2L7G05j\nGJ9pjdzINvIAIaJFNdYREWOTPeKb8LVeI+51BiduZtAxmUSnd5SkJT1pN9OdOixt\nX0y0c3CxDgJcMG/ooWnRQjr/ZTYMI5QJF8dcDfEfoQy+VFnw3Gq/6fia1SIR5Xv5\nq8Lqb1Dwnpu56qezXTp8S8FlHjmKLIjvk02JMhgccErV0iFRvzaZTqaS1WnF4CW1\nfM/VMzOuea4us6xUXYMgcEMXEOpVuFY5EWdwaXDvecmZKuXmVDh3cu05X7XR41pB\nhbbYG0L3NezbquFfHw1TduegsZztLSDTwlu5aCaRY+/7zexMae3BPXaNPJUx/jf2\nRpndN2UhJFFku28jmz8cPL2VQxnKY+0awtMgAjcErA1bvd6LyUazTDdN7vF3ivg6\nOH9JmXxwtG9+fy3hI1NgHHzaka5VE/GYb0liTS9DxMgtLB4kI24Eo89K26vEEoal\npSMQes4d6hx9uSF783eexbs5L23Y2MmYZfPXwKpe3EQCn+jNNlmlUvWKnVR/mRQA\ncnwvaTA8AHRjR2j7j8d/WuvAR+0czC8IftigdmqWOTeX0Nk+GIGE3LcnzDZ9TrLh\ngPMmdq+Srj/x59/eNYU/DWr0XdTfpBOcYfGt2z7qw0f7nppNXBtUtEKpkmrKgEZk\n5d5jKNFQZFRaQSjkVnaRi7Z4JONYRSpMXIYZ6HYPU3bTCJ6FgBwsF9fvQ6Es7R3L\nj+6YY082IU8MfHpOJchpCV1vbUqynI2dUQG+9AnFfrBHiQwwKVX7sNMIdnPOgfRg\nwG9OgzbGkJpVsq10stlruNjR+GqVGcCp3K9+bY5RrGEU6IbAg4yrEYFKRdkW78Bt\ni6z+8+/yc6j8CSAt23B4kfTQbysAUo2DgOtROsSbtFpL8SRl98KSbNjHmCtrmBQ1\nE8JiZnxWw/zVjNH+3ZK5/9fCtk+n7xrsRb+OuAfJ2TAZ2JbFTvMhwEJCUqbQalpw\n9d3rwNTDnqGVgwZViGUZWSioI5v67H6uoAOeKyeZSJ94XwQ4hdXNH8ckBfdWMISY\nomsKXgMYCV7jQe4jlf8kgA==\n-----END PRIVATE KEY-----\n",
  "client_email": "ci-runner@ml-sandbox-3201.iam.gserviceaccount.com",
  "client_id": "588053212528174665975",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "https://oauth2.googleapis.com/token",
  "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
  "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/ci-runner%40ml-sandbox-3201.iam.gserviceaccount.com",
  "universe_domain": "googleapis.com"
}
EOF
}
