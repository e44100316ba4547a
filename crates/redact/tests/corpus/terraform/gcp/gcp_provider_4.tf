resource "google_service_account_key" "ci" {
  service_account_id = "ci"
}

provider "google" {
  project     = "acme-prod"
  credentials = <<EOF
{
  "type": "service_account",
  "project_id": "ml-sandbox-8818",
  "private_key_id": "6630d57563b7f54c9ed065e9d3ef22b1c3880453",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKezFL8gR2Ie618zCF6lQUSwgc9vGwlr\n57yBwspySrkI1ojpIQVGD2bl0pAVxPsqhW9pCjogLU/iaehFrB/TTacmZZK79hlP\n3cTCZH8VgdDf9jrIeqjr2G7MWHiN8OsWe1N54UGeF9N7ELk0W5w9Xj8ni4qziHFV\np5BDnV/ymV3RRbqV9/bR3m/pwmUAgBkUul/4OIgZ1RdPJCK0hjJ/ohT6Njw+zhtw\n8WzXWzyeA9UzGZ0YW7vkboEUSpxTJu1CAZHIX3OCyPVNCL18wYzehL3gOpEjPSmi\nWn7XGM0TMvCOvCpCJZmc+c0NAGdWUtqD9MTD3rnYzA2AYZlmRotBztQYzfH+icbj\ne5YMtSDhVzAaA3vWS2AKfcozi+EZ0VDO98Ii7Tq1nGX/5SIsIIyQlD1W/2GPAiqD\nUtz1NF65FUvdFmr7fSsMq0DZiN64kd9izEIAqrC8FPflyJPACZmANdXdc/VmpBSI\n3OUzVy88aHaX7qkYBkHHirvj9fe6ycvQyoMhc14Kp/D13pYaxZbKnTb7gfEov644\nRwi28J7K7mTSprHtRGUZZx2/yVgFkb9wqlA7FCAxnZMs5PvaHwTFbExlyiX+OxHT\nblkc0gVVP0XO1U+4emfguzgiPNwI7W7/rAbwEul9I22pUyiwMFqvZGyZSmNCy0rR\nG746AL+ttWC1Pf3+aTiIyDp+OIUoRDFe0JcRcQazM0X1DICEFGtS4gLg7b6eQyWl\n5e6ZtHr3Iphcb8eTJbIkemRu5At/1ZwBxpsue+ORTwesGAVzSowq/TmNjKZ27udJ\nHTOJLLBpww9VbyGX/HW+veln4k/yB8lwynRLRiXpeC2nMAFfpG9Rc7VEhtBICfCD\ncNMYh7O6yCUv651GVwr6pymOaXfuLV5QK2ZChFTMmXRKn6R4xfHc/VYbRiI91jdV\nsWSJE75JX6CVU/oFszGyXb2EpM1PyhEl1KbU94bSJ1vxp9TcdPtqmW/Z9Tnj7l2W\nCwUnhk6UxUAVtXb0IdDll9sWuwqubnvco3GIv+i3MxU+MGQ5mNNfTKA7z5AZGeCK\n2nI2PazrYMhBqd+MGeXcyG9nAtoz+6CR76JPaiQgrKC29B8bCtsXvQ7nLe8XNicR\nZBnGoiMhwon9/op0i+qfiosuVSpiiioa46Yh5I0aang3XhjUf7qsRPDbktsW+aPd\nYsJyX350tUdTTu+WXDmv1s3v4NhUq0Hyv7lhjTEhh5jwDQPQvAVMRLtwLI7vm+cG\na5WitZw4MxSdKHjXHZXftvis/OGXAZclfBPpUgLbMQ29qfhx6udU8IRKUAzeXExC\nXozt7fwFINXD7WercEl6BjyMFjl4KbrjLKlh8DfD/0zWiGsJv2jiTLfdVk7l10Pm\n8fGEVnzMkt/R6cVp+Y6hXrNt+ad2wzfvrGjFr+980YwiK130tZtX4vy+pf4c9I/t\nDWDxktyUJ3aTuyUyoGs0tyWNYMhXmY7e7Y2UvmBWS5Gv+GtCghbUlsS+nGXOmu8R\nUHbGG01jr0HzfPsguQxn8h59ABjqNEaBw9eJKCIoWDmC8zvI2vcWTM6HwBb/1cqd\nKW3tQKuuAVxC2z0du6HzUg==\n-----END PRIVATE KEY-----\n",
  "client_email": "deployer@ml-sandbox-8818.iam.gserviceaccount.com",
  "client_id": "587124945169642895546",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "https://oauth2.googleapis.com/token",
  "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
  "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/deployer%40ml-sandbox-8818.iam.gserviceaccount.com",
  "universe_domain": "googleapis.com"
}
EOF
}
