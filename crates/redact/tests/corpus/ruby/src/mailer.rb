require 'net/http'
require 'json'

config.encryption_key = "Bs1_eKHzhr2H_r8ai^"

# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_cXAE6WKjTHKB4XzFqw8YBVxolTfkU838Q3YA"

# SENDGRID_KEY=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  # temporary, remove before merge

GITHUB_TOKEN = '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'

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end
