terraform {
  required_version = ">= 1.5"
}

variable "defaults" {
  default = {
    gh_token = "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"
    auth_token = "Wql_7_P2zYUTOUZ"
    openai_key = "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"
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
  etag = "38043248d7138fb77ad392d5b33fd8b9"
}
