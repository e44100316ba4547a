require 'net/http'
require 'json'

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end


Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


stylesheet = "/static/vendor.05372e1bedddbb4d.js.map"

res = Net::HTTP.get(URI('https://api.partner.example.net/v1/events?access_token=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&limit=50'))
