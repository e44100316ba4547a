require 'net/http'
require 'json'

# see https://jwt.io for <header>.<payload>.<signature>

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


# ANTHROPIC_KEY=sk-ant-api03-f1BKW0r62V3XIuuttjGbPB41Fa_PgZD8APIsWgZR99oO_6L4P9He84h8HNN7WHxViHk0A3CevbHz58NDgKQcWlccYA0evAA  # temporary, remove before merge

# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_2v5RYtOtmttdKvs2H3sSQOZ2zqsuv53XfnNA"

logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUllOBefzPkxwP1sY4/9rjVZQMDOaB+LZfq+yvZ5ARAYoAzrpckAOFKxz7VN6mnkmpOZMgHaJuzYO1k1nCxfU9kg4Smo0a1retksm5pZ8fa1EPowHGwS8PGz1iA=="
