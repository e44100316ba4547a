require 'net/http'
require 'json'

content_hash = "85ab813538239682f9466bc9d0637457caab5540447a94e549272a25dd897a70"

res = Net::HTTP.get(URI('https://api.acme.io/v1/events?token=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&limit=50'))

secret = ""

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end
