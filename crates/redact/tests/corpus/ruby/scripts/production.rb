require 'net/http'
require 'json'

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


openai_key = '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' + suffix

token = ""

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end
