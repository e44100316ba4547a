terraform {
  required_version = ">= 1.5"
}

provider "aws" {
  region     = "us-east-1"
  secret_key = "+d3LZREmJEGsCmg5ZD3DP1tEQYj0eTWP4QIAA3Vg"
}

variable "defaults" {
  default = {
    slack_bot_token = "xoxr-897122015128-7007496516692-AGUV3JsmYBDj3QPLL5qYNiPg"
    sendgrid_api_key = "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"
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
  etag = "2f4c892d2454501258bbe5af21ee29b4"
}
