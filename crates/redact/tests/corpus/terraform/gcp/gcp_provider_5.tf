resource "google_service_account_key" "ci" {
  service_account_id = "ci"
}

provider "google" {
  project     = "acme-prod"
  credentials = <<EOF
{
  "type": "service_account",
  "project_id": "acme-prod-3713",
  "private_key_id": "e94f8e0aa724f33eb036458c000d5cc81bfd7206",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKfuY8kNDAYeOZRkJjIvU5DGvIw533tw\nmvKOo3MELW2F7wJkaP02DSuP6Mzep9GaQttMYi+XuMKUPk7whwsSFtdVxfOCPFpi\nrtB/evO4chbg4tg4T6OBprnONnmWBEIn5YQPw6TQVHbmXSF1vcTKcJpWirgRz/2M\n8hFORZu6ksXx8Qa4VGgWD9OIzP2/hGMpNo0+kvdAysxf5/dQnhER+ILXCvl2VmUG\naPTo66Dfk6ulJ+6UkGbFIYBc9Q+GufbtGV7CGP7+4TNwwrfKU2Xqe4pbb0Ll0GBK\n1J7xPQfc96g9CIK9YPRBH5G7S6oFs5c/CxbOzl4eFy4lNTlS91MxX0t2lXRad1QN\npN7Og5P1xBiq6Qgh1PoUEPiYRcVlYvEhOaL3hcqwGaKWHUkoWXzQWaCVk+ywoMqL\nIdKTcHLRJfCTu8+S2Php0kfaIYmZj2L1TNnBFvfOiHxM56T9xcCW+rbW5uQcKRtS\nRuYS06GNLAmc25XDMCN/VV7jaF6MZ3H4HwugbFubIPpVvLZz1KK0jkJl4co2swo+\nxjli5/cJ99Cu0vZPQfI3hv+9dHfh7q4huPbd9HQGBvPx7VBdlD6zcQUrELMKn9nS\nEugFHQ7bk1XeIG1irSZxUXU93NgHEWuIwG6GsU4UDJwX9lmtZHSH0mWx9wcrF9Hv\nOaHFAg6IToIx+gwC+uqF5uh7l8qC5+Z6gD20R/34dXUlSVQ86PxGQ4NtL3dIZcqZ\n+8z+INSG/r+0UIa52L7RBFDYR6P8HgGVwxszgrDkztNwbRtn7vyAhLELFofkcTVq\n49ZVH5Bki5GvdnbN7zyoDV8BWw9bdU4X3B5n23vHi3lMHRiIRpCie2U/pAINdj3f\nsPLWc53xiOxI6lD0LqIxL7j/v6ITpKn+evyJehd+RkwCMAb3uZkpv+x51FisHA33\nds7VfNzHzYUSttsA0iJJkQr7Cm2Ray3IH7gZoFtheG3xbBI9IH+/6ETXfv8Zra3J\nskoXp1mNTqOc7jVcgX0mmPBCXeNcspa1AhoYPK9s4WDghVbo6HF895fIfgvXBREe\nq/QjT2SM+CfWeCzcokLrLk0yX0Cv/xa69Fpp44wEjR+LyYodi70x7icgE+5Nnc9X\nSFdtw0HCat5awkRefzCcE0lG9NeqNHKKu1s22YZ9WkxKClCOuL8yQWQEabT89a5f\nDQY/k5uTK8B/TwehMbh0/8KqAFz8IxCd73VoEz3ZnXIYhBpAYFWSK0HWzoHntnWm\nDqAeWNlnBO2O8j3GPwGrmWASoQB+3dqQz8ZCEdVgpsMWOWAwZVgPGq2glN6Z7HrS\nenlrsIuGJbDohb/fMSzgOfKiLlP1sNLAuaCaSeLldOXnAbaYJyEm8mI8OMJiB3Qu\nFEYk+gi2tgt/Km4okH/ipTk9o0nySlXMxsTAUnc2exARQ6Y9m3rE3Hh2kC1IYLTJ\nQQgohd140jnqckngYaNVH5m/EJxUdK4Y1LduO5mPLcaI8Dw2jcrC5lDOcz/ccQjl\nt/jVIWydnZvP20BnJjQS+yZ/oYxFanfzJiD0gCpu4GN2tozckK3xEuRGUXOuRTxc\nDgaIEFTvAzV4BIgpAHjbhA==\n-----END PRIVATE KEY-----\n",
  "client_email": "bq-export@acme-prod-3713.iam.gserviceaccount.com",
  "client_id": "121293601968220545156",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "https://oauth2.googleapis.com/token",
  "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
  "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/bq-export%40acme-prod-3713.iam.gserviceaccount.com",
  "universe_domain": "googleapis.com"
}
EOF
}
