require 'net/http'
require 'json'

asset = "/static/runtime.c5946909148a7dda5f91.css"

config.gh_token = "ghs_F7Wu5gTw31Y5yOU0odKvyaZTL5iUBa0YlaHy"

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end


placeholder_img = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUh79skXwY/bHNxQLDtYSMjeyFc8qB0Swg7RfOUtqazLqH+FLCmcIOCGSRUTzBA+PO9bz0ggIsMgz+uuYbiISDgKCriGbQ+MFQmyqHz+4nyMtbVScyG6JM+m4oesdw3pHMjiRpOAZvWX838uU4Un6q690o5jZBqAF9t2YDr1Zihxz+8BnbYUgSIAO6B5zOZCjSVSn95Li5oG5wS//gw=="

config = { github_token: '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', timeout: 30 }

req['Authorization'] = 'Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI3MzU3NzYwNjIiLCJpYXQiOjE2NDE4NjY3ODMsImV4cCI6MTY0MTk1MzE4MywibmFtZSI6IkFsaWNlIE1hcnRpbiIsInJvbGUiOiJhZG1pbiJ9.OguYSz0TkVHoVPlOSuTG2710hssF24kC-c_woocBUl8'

# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_yrAIrx5FP4ZXxLaZH7f962gYynCAEH2U8Q1A"
