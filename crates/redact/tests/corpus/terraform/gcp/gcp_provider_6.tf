resource "google_service_account_key" "ci" {
  service_account_id = "ci"
}

provider "google" {
  project     = "acme-prod"
  credentials = <<EOF
{
  "type": "service_account",
  "project_id": "acme-prod-3889",
  "private_key_id": "37c4ad2cf5be31ca2e64222bb7c7db95c5d4c672",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKdFXYDdmjhG+vVq1L2djTMY/ZXlPXKA\nPSXQEfIPli+X3XptsfVPYtvNhjPag1/2LUhDG4XdR23zDh6Azcxwyg/I7mbtv/ko\nbnFbuSiwbFJ8UOPfubrAp6Ghdd2UIlVy2Bg5LjFl1jj1A2+c8mdxTf7k3gl+ePd4\nppuSVHitqi3utGQxgdViF7nj3vCJ/x4H7KV2JyIBclHD5I2W8HJBPOLVqx2ECQtn\nZpy50TSD69z+dcXfWOW3aaJCHru3rdffvgixt8Vp2O8n4OUdSDa6DtRXg8uxR+eB\n3fEPXE2eyveO1YDW23iy2EmkVUQc1BPF1RJTt2s4EiGZn7Abfw1gI/1aFkRWEIaQ\nnG4ODbjX9XswJblXlUC+SjgTDfR2kg4zqljsFjIuo7q9+jfR+Ls5VFkX5O4gMHPj\npETTGONRV3vtPUH1xAde0oCkf0zhPmIUXx9dNYOw9ZCpr1nL8tsxI65QzU+w8L5s\nDCA+90f7Wb1DJPVMW9gCtVF7gAFkodlxmViJf4ni40z+nPtDUSe+vukEr5SRdQ3f\n50wc2uc6vHXJrPwloGD+REQ1lm17H38oBjxC7XeL86J5i1GiR7EHUaraRNTIwfBv\nuVrjVPc691GVEasEjrrL5b4Hmq+1jo5T9hCHs+iZ/zKTEbSKFE4Uanuhc49zlGxw\nVILcnNxrlXxlUYWsIlnjlCbo0iCwQN5yfv/r0IJKeyhXfP00rbEoV9BttT6FVH7L\nEPV0pg/ggEpxG4hm51Tt2BWLL60ydtjcekChdEYaEV9RvppyJuopUoeDMH154ggh\nnFVivbc8P82tx2tAOLGFqJm4iNuVRWBi5ejApxnX/avRqFLcdMhbh5wxfHgWyg0I\n7DpW95AHUu5LZ6vOfuQh4zEKUpHZ5+LtigB7AZZ+XzeoMYNZb9aACOOmOc13ASro\nQKX8P1eGf45l/34OMWKCCSdFw579LNR5pVxuz3Y7sQjh8lrdtcBx/N4Juwo+Zr7d\nj86gUrvg+BLauXOtgrBp/QkG9Uk55DkNKnuSkPQnDIKXQBUCYrL/VucTq8oCotzV\nCsV1OzCHUCpM0NR0f3Mn/H7jINDPg/zzyng/u/feTg1bWCMu/1u1QielnpXbN9TC\neUUjLaXjppfx9KCDK42NhJO9LKqyIa6gZ5sgbuiN2TS5tJdP2nbgKDKUfjDqXTOr\nmbXtzxmqJiLoEXf7WdSZNF7QAZlqDK32hQWT/NLQJNPEds8MQIsldYVrd5MUVO0F\nHlz+jTk3HpX/C+6EZIrPj0SLOZDkq/0d2bYVNJVB/ktK7HVstsgDuqX+zXhbXrP2\nH2nF1NvqIohX5Xt5d+etW/9wo/aMuIoHpcFVl5yUX/c4kTnaK6GH0T3THgEWfaZ7\nMm+F47LXFgL6K4TWA4U2vTpVYUoUimJO9hYfk9FyrYqWuSqtv6gRhlF95Sm+TUZy\nZ47bRsbsqz09OoUgR8ZRYrSQ6gC92KvrBRgdoWOKKrZo9VLL3MvLZj05uiOtHe2d\npG0KLbwcn5Vr51bRO8P+e+LKgmZV+1fwn8sWVCk3NiVfX1zdBMw8NNJ+ktc8P/HY\njWJVZymsicfm2T5Tmows7g==\n-----END PRIVATE KEY-----\n",
  "client_email": "terraform@acme-prod-3889.iam.gserviceaccount.com",
  "client_id": "643609450931623308458",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "https://oauth2.googleapis.com/token",
  "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
  "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/terraform%40acme-prod-3889.iam.gserviceaccount.com",
  "universe_domain": "googleapis.com"
}
EOF
}
