terraform {
  required_version = ">= 1.5"
}

variable "defaults" {
  default = {
    hf_token = "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"
    gcp_api_key = "AIzaNX2xqEU4hOboJ3C9Vp5-LpPsSyB-Mlptl8w"
    azure_storage = "DefaultEndpointsProtocol=https;AccountName=acmeprodstore;AccountKey=N3GlFDpntkU3ZNmySs4qGcDqtUVkekz56x1cV29A3TDKjOhoPylAacFWA28lK3H5bNgCzQl9piKJz9JbN1iipw==;EndpointSuffix=core.windows.net"
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
  etag = "679e305e9ca92aa158dea80ae7790d38"
}
