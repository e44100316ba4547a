terraform {
  required_version = ">= 1.5"
}

variable "defaults" {
  default = {
    mail_api_key = "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"
    session_token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxNDg5MDY4NzgiLCJpYXQiOjE3MzYzNjE4NDYsImV4cCI6MTczNjM2NTQ0NiwibmFtZSI6ImJvYiIsInJvbGUiOiJzZXJ2aWNlIn0.D6EpYVgIacso9AJmVdzyxiy8rwR8m7QrClJxuBajyQc"
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
  etag = "191eb92a0056f20f90e03eca67957a35"
}
