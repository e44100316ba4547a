terraform {
  required_version = ">= 1.5"
}

provider "aws" {
  region     = "us-east-1"
  secret_key = "SkA8qncfCv0a2Vs2IACJ2kDRbeBZYyPcPihLOqZF"
}

variable "defaults" {
  default = {
    twilio_key_sid = "SK4bf0cfaf0ad7b91f2821350a5576887b"
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
  etag = "5799aa9441bcc7d4252c142ecb0a1426"
}
