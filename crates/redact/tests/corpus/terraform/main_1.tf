terraform {
  required_version = ">= 1.5"
}

variable "defaults" {
  default = {
    installation_token = "ghu_1T3Sj7qoGUT3IDUfbiliK9KUVOSA9J0FJcT5"
    llm_api_key = "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"
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
  etag = "baa014a413317d60fa35b352d23386ab"
}
