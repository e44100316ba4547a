terraform {
  required_version = ">= 1.5"
}

variable "defaults" {
  default = {
    gitlab_token = "glpat-5an6X8vhFz5GnrnNSvCi"
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
  etag = "fb722e7f65c68ea6872da9bcd7eae981"
}
