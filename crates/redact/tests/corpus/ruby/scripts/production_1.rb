require 'net/http'
require 'json'

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


db_password = "AIzaSyEXAMPLE-EXAMPLE-EXAMPLE-EXAMPLE0"

# old github app token: ghs_ouuJJ72kIqRDqM5ykw180pWO8AJ5w42qfZMd

hashed_token = "$2b$12$QmhDMw2Ho./MDUOHg93VBEXJRoSb71OWva5ZIIis3bGGUU0tqP/9."

secret_key = 'tXlxqbjHZ701ERXI' + suffix
