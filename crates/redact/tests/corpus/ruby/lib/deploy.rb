require 'net/http'
require 'json'

authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDWVt4uafoonF7mKZp17IKjEcJ+lWmAwyngj4o0yv46cJ2Z4p6NxWxGODoReHsNWUhKt5qvsKUCESme/Umsk5yWsw5bI9G9OpBUJMFSHYhVwRayj5SEfSw5TBrm9A2uvenXtS+PBCfqhdtE9cKz/everaDF1kjfYIct8u3frs23SNCkNP6AxDg2K8h9AuoUpXxoXtWodKUX37rFa21/u40i1YHERuHHWo+ZrJ7BvOejScm6DlMgsNMu1mD1JcUVzI8aEX7wXkJMyA4ymSATGv1ycxe44XDCnj5yzXDgYkIIvQRWqvVp1LhA54YUnehVT6J4n371n/tpD6CF22txPR deploy@ci"

stylesheet = "/static/polyfills.ddd7a23fedeecc57.js"

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end


slack_bot_token = 'xoxr-076492491379-1795454737140-m7Huy1uA7iAc0AmZhaORk82g' + suffix

hashed_token = "$2b$12$VjJYu06LrnAb7r5o66mcKJu4Qe0pAd6PuG0ibpJ3I9Xuj8LzLzcOf"
