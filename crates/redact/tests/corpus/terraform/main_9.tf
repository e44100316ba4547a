terraform {
  required_version = ">= 1.5"
}

variable "defaults" {
  default = {
    pypi_token = "pypi-AgEIcHlwaS5vcmcCJWXDGYcMeXBu27XfMvk7z8_k6DcMbTQwIQJnS8Fa4Myukg_7q8PIdcO435-zaHsJwiprS_RjNLDMiA7tzSEvb08sZISQ_redmeP-vds5T_ABu3RCMMGH5USVNIEwqhE9rufWLeb4E6G1"
    firebase_api_key = "AIza_Lf9IEW3mhj9MPltJ6-NcCOmXQK87JYstiZ"
    slack_api_token = "xoxp-40636041147-81738901662-3475671905394-96d3155ee66989131072c38c1ab8e7fe"
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
  etag = "4509194e230ebded30d7319eb807af39"
}
