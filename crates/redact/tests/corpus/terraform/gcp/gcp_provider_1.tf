resource "google_service_account_key" "ci" {
  service_account_id = "ci"
}

provider "google" {
  project     = "acme-prod"
  credentials = <<EOF
{
  "type": "service_account",
  "project_id": "ml-sandbox-4769",
  "private_key_id": "11d03d476ee04b5c42d67f8ad0a88bf1b4af67ec",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKecErNtUlBq7fK7WD5814l0+DMj3t2D\n/q3l7qH4C2ZsQdJ4P79ltVrPHRavGyDGLX6Kpf37wL87D9exs+V3Ne0LwtB3a2Dv\nn1N6PajZWFMfemwyPhMGB6T5Crujjd/1yrZ+HpynKqOkPrix0YwPSfN/vCjwQWmM\nDhS4iGBXxWSOm3yvDJWRKdpwW3LZJ2msnpE24MpEdwXN7yNkSjaupY427kJoprAn\ndpXEGA5PycRYT1DhmItK/OxVTkdqHzqpVjw0mxMjvxZL5GZO0hEeV5m9+CL+hX8I\n1yB+Spv0x8pzBE7gfTO4ToCwLb+c7ogEdfDhsmQvDYDJ3RTli2rkJtxmQpxbluAj\nQAhAaDNpTMENNW/At7nJL8kdXdMPwYrvP7HUujB2hxqmhqmP6UV4MuATMTDhbjjF\nCXVS3Ao98NzL3L/n1WdCwJN257dq08LNwHV0zBKN8bejE4v8JlNjqHoQxEqyQ7zy\npxYkW/JoV1s9F1jAzVkR4EWEcMVz/TaY3YpOsAEEEp8OIdnHUJe4fWcnXiaYe45R\nVpbjAWVMZxcPbhun9dD+1es3MMCthhT16zxmaXAw+5VqjwixqKEUpV/F90Oxgypc\ncCw7Ib/NO0nXFGLsD5mxiyGVfi86JMJpaUHIE4BNhpyuchYYsdzIVNLqHOygOWie\nhMsh9KqR3AX2pUruuinbu0jvJMbcgF32tOZ+q3Y62C9VPsQ0VFiKsHuomDdn8PSG\nXo3tzRASl4ICaJx2M6veKt+AYQFRhlj/WQp0/9dwjVSC906nJaorhqODXwOWTOhu\nk1xW2dfQPC1JKh7TA9m/GtoW0X/FcmVfpXYiWmau94f9v7HNuMpOLvuFjX4D8OgU\nkJ1FZ1AUDgc30wH2ttf88/zeSz8Jo/tbeHGP2VuOJVlXyjgqyFVK3JdSe1rTODJl\n0nycrFXS6Fat9cA6TubUj1o0YPPfV3AvXUwiblUElgceTP3rFw9MaMIujsAUs/Gh\nAJ72ZVeSuVPGkya0KoJoTyoIimT67IS8KbNJ2udV+qCgTqqJ8kQfysuCJDteWoEp\n2iJhIwIc6170vVtJrz19DAdXAjyuVhVN7vvQekihs71+YLUAh3zd7+6TSmevJvN7\nL/Suw3e0KySG+uer585oDjGrpxZPWq/M1DlCNedTFe+VGjEJAySBMfrHvBw6dRd+\n+D3mZwcLi0UYjEqxjdlGz5wN9x6DR8beNmMBu0VofBLGAM87CwJ9Fdi4kMK7pT81\nFb8LylnI5B0DuqDayFJghwcNpCQkpdEd6+l/GlXl7DElF+PTpfVUThNaNiv2h4kh\ngsbhXrpoyMqNwKbtYPXppsT2L19xIGHM7/pys7Z/espULkuA/6ClsvfESkKdsZIq\ncggNZKkFV8oWSg9TJf/ItiJXywy0lTlma5Y48ZjpB5juMWYhv74rlZ+EFfJ+H9sr\nLCKyEdlB3DXkDbnbvTpqiMGeNVmVALUT5qm4uZAIDjVXLEJIQ7zAgbGbi/W/otWA\noqzO9OMJ7lMznTPPNivxCNvsFtmWXyQqpL0Zbef7n/lNJohJsTVOPUnzQHXgM67P\nJc2iyYXWiDK7iG/myTy7PA==\n-----END PRIVATE KEY-----\n",
  "client_email": "deployer@ml-sandbox-4769.iam.gserviceaccount.com",
  "client_id": "047283234670118852428",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "https://oauth2.googleapis.com/token",
  "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
  "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/deployer%40ml-sandbox-4769.iam.gserviceaccount.com",
  "universe_domain": "googleapis.com"
}
EOF
}
