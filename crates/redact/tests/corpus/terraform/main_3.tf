terraform {
  required_version = ">= 1.5"
}

variable "defaults" {
  default = {
    ci_job_token = "glpat-_8zAemGl7gYGwYwf3p0c"
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
  etag = "a2c6d4e85a8adafa40e275fca39d98ba"
}
