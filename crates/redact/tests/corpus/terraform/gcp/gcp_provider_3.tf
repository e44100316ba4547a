resource "google_service_account_key" "ci" {
  service_account_id = "ci"
}

provider "google" {
  project     = "acme-prod"
  credentials = <<EOF
{
  "type": "service_account",
  "project_id": "acme-prod-1170",
  "private_key_id": "1da3500514553cc9e1a99e46b1cabb6d01a5d66e",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcAq/fNskDyEZiG/Aiu6gptv/BwitY4\n5JGNb7fveE4qIV/RsanFaNUtORGHIgFaUzi2k3NtjtXgCuHnjszHHrkn6yhGS9CY\nYDpB00Fj3YNAVfeeBPoh+Cx6wtnEp2eRFoKNNVfdsJO8jn7VXgoGO36XN6IHWkVm\n6iBfM1nBQz2NvZKU4l4KShmyrgzJVZ2ht/49OJF9DlCjBLzWo9NQcGFrFrHehrbn\nncCxCW6Uic4CKtvEtpjXauyMX5Kpo45Kn67WNMwu+YG2k2AkiyDu3LaXTiDZfyGg\n/VOTrPV24tRzgyPqaZneY4sx2AZunk3HgCl9bfjF/v92KwA8EAOKCPC0ORML8Elt\nbt2p55pgmEyKKXYc3jdIBtsuv7WvkdM+MRIQbTu33Xw4SIiPRB5TfIEueP1eNBwV\nYGVxJmUKUDkBQMcn/54rv1cUT+PJ5wJ6CBSXvo3JPHppHEfMN7bNVNHu+onKfx/Y\noCqb4izQF8zrvIcloPeLxy8ymoLD4gGXEjDa7qYEFKZuu2ue8ZmHgy+Kv95pBo31\nDEryO+eC8wGCD7gSIATVvx74RTw1VkSmFNjXGDKKUaMrWv6QC5Sm+EWP5O4LFsio\ntm3/QJ8KIeXiJ9ji9Hcb7vOe9+FBD3YcQy4bOkK101vXZuHBm7No6+6vSieYOerr\nBr4Bl5kW5VeVRYQR+GYW7u+XuQ+wjCYZbtcRqtcTn8XXLC3wR0Swor3EEgA4eOf1\nQDI78O6Nqniy9mZzEm9bMRGBCL4UNPp9EoMmXLJ672DXSvl8cwkzJbBho4f2LDDY\nLBCCagFlmHj+uAu0+phWxCO0WVZcgqGO9ElKaLF4IyRatEWuc/og5TKXUydAuo3Z\nEE/qJaraXHk2KSSKKKnSp2vfpFCTTfdJ4P1cyBQj0rJJ4ysXcPwhr1n3sgUSzpXT\nd95Ywdm+JDHBxdcWCJOwyOjYzQSYGdZl4JaNVVos32oQYNEshUUbQSbgQVe2PxcI\nJU3YauZksT/8Gv8YHRW1+Y/0shicPVcyj+suFToEBMgoMwszA6NFemWen6PsI9sj\nOgUBiGvN6NbfJmhznEzItfB+84VSX9N6d8QegcEm2wIP9IuLe4i+LKkQr4CkmP6z\nh4krH8p8G67+MnWDwNT8D+mW6AStEm9gy02VXH9s0QvWoXOkOGkdwfCCAkNbMSeR\nTWAvMKSKXxk6nddALk+AUly0BCV1Pyjr2FLeJd2tMViV/VMzrq4BZ8r2VIXz1M3F\n660G+qJY4VsgiSNkoPmjaF+O5niGRGNMjmEq4DsNuQr1/9p9L8s/4JDrnmTDVdP5\ndZ5Bt+z301pyYO1EKRbD833AZxCy5Q1Nw0d7TAHReaqYV+lxLY2sSREizKS8/3fd\nDPiVsPnlnx5037jWuIYiG0/dDpUnuVLRPqH3llCVoT+VV5u3kOV5tDoxn0tMYnD3\nCEeiZllG5GROGO95zicF6MPkET2cTqtxdi0LFlxl4fy5GSx2YndypfffpoDpPjxe\n0xol92g1CtvFgf3ygCzS67BlyRgvK+ddsTJ+DiL2uqKdmjbSPOEYi9SmdoR07tTC\nLhQGQLbUsatoHFsNUWJ4jw==\n-----END PRIVATE KEY-----\n",
  "client_email": "ci-runner@acme-prod-1170.iam.gserviceaccount.com",
  "client_id": "553883345843460603452",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "https://oauth2.googleapis.com/token",
  "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
  "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/ci-runner%40acme-prod-1170.iam.gserviceaccount.com",
  "universe_domain": "googleapis.com"
}
EOF
}
