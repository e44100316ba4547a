resource "google_service_account_key" "ci" {
  service_account_id = "ci"
}

provider "google" {
  project     = "acme-prod"
  credentials = <<EOF
{
  "type": "service_account",
  "project_id": "data-pipeline-3121-3885",
  "private_key_id": "10da5e117b3fc44b30eb5bc917c34012615c0ae0",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKd3m5LdnCiJcRh7oZ+MpZn8NP6yEo7O\nY84v8Xc422q3L6APcnxy+nvrAlke41+okqph8U5/1oJ5LGzKFtjuiZKxAvKFWPAO\nyquNrIABFHZrFn6VlSnsHmskagBiwocnHm6itgK45zdExY7TPEjMhi9NFbZ04V2v\nU/SN9xn7uwtCwbs6UozY/QRbVlTsVOl84ymLWN8ShKalZ+TswmyiWghgBSBnkQ0S\n0tCZcBytKuSYMpjfpTMej+n+E47HoxPXrF2nTOyTHid2Y0ePhbGVyTAdbEvUIxe2\nsby/VvrNxf+Z9plGn3PSRvhN7iXNp9RvC3W3ZL/RQP0pjLX3/OQWERm4vPyq7zk4\npw57um/BE8FZfKt2qHaheFc7Q4WcaOyPGVIe4IUyFvAMXBljBgqJ1qzk/HA6KdS7\nAZkwS81/ChyeVhMFoVttn1BWGUrTmWFuhOJy7HeQmGvKYOGjK3uSaWhJ+e4HO34e\nEbIdkcdl4+GeEi1LgDytGNGqYtfNMo71Ia+5WHTkBYmCDcouhusRPyVuWfHjMrq9\nkkk6P+ZNhyNKNV3qkeCj6zlcmLMJfxPR715nv0H6f0mb4d9VEaLrGjJPf8iNH5Lw\n502aGzwUra5mOzjBpfRZLaWFxjSxI1jaCkhXL3+zkVNu5m3bePcB5lI7LcQyux2S\nDXb2lPFAIeV7USZRk+wTOE+o7RpjOpXp83QO33Ajenyg7X4SyVQBf+IKdMjOYSkV\nVz0KJeCgon7Rm679pfdIL6sGhhWaPaR0M4TIVEnK9e4rz453uphr4A3iSYcMMfIv\nju2gIWfw6+TA0Jnu/aGzmkINO7vVKbFqB0aaBnWE4L4sx6/nujLI8euywVniMgcK\nVbiBZuPiJndw9FAv6SNmoSKVg0XzytfMjSDTcGSC9XyUzQmotCxGk/ZbGir/QWV+\nR8GQVLtCZjN90ZU9qw/OsupRE7ZKZdGqdfTdPiLMDWfzD6DaqFTJkMiTm9XXtOKX\nCLNvt79T1sb6eBhOpLcLm5P3J/Rhk4vXuDknDoL7r7HxXF9psFiEk8lfkUZWMwr7\nVPdt1LqnHrnyCL4wavVwcdGu+7dVK2/mDRcUrQeQNZnMasndT1TTSEGYlYiso8Pr\nIcMJyr7f2gwaOuZ0pEWlzdh1oYj7y/6ikZTljfLQORxmOdHKV+l5E5RQqbZFvd1O\netwrQ+ta1VORFK4Wy0MRTU8HNSfSsmN+4F7RwCURS+foh1fYOvKfNPbCq7bY+nYd\nGt+db231+AuPugN6m69zwA4fdVNkhS4ttfAFxhHEic6GsoMpmk8Inu4PYR3I3yWt\nimxudW0dQcEz23TnLmWiNXhR5BfRT8FhH5Rxt0Dhksx5AjW+2j4uCfRmQG6CfAeX\nI5HMfSfqO2OJcY5rohTE/YTQSZ/ON9cCyNrHk7ZzSir5y3WjmKJ9mRwb5Zuku8zL\nfwJGT+S/BgR4ciVoZIATzdmt2uBi4xBR7TqA0idSkvzOGSVTJ1fkvumix4p999YJ\n6izs28ChBYfYBPd/ghdknZtaN6N1AOqj8/r5eC6eSpArQd5zUx1UQKST3pDr+SXp\nY4fRUGRp76zDFOK52vWBgA==\n-----END PRIVATE KEY-----\n",
  "client_email": "terraform@data-pipeline-3121-3885.iam.gserviceaccount.com",
  "client_id": "808955211691524738369",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "https://oauth2.googleapis.com/token",
  "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
  "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/terraform%40data-pipeline-3121-3885.iam.gserviceaccount.com",
  "universe_domain": "googleapis.com"
}
EOF
}
