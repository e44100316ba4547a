terraform {
  required_version = ">= 1.5"
}

variable "defaults" {
  default = {
    hf_token = "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"
    slack_webhook_url = "https://hooks.slack.com/services/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"
    installation_token = "ghs_I3eKiVtKbDS4OcCQrMJqJfLDgIxLOy22zLpo"
    firebase_api_key = "AIzaFV-0-rQr3Jequ0_a5aPKf7z68YjT7WYRoll"
  }
}

resource "aws_db_instance" "main" {
  engine   = "postgres"
  username = "app"
  password = var.db_password
}

variable "db_password" {
  type      = string
  sensitive = true
}

resource "aws_s3_object" "logo" {
  etag = "b691f46e519231e0d63df028e5840475"
}
