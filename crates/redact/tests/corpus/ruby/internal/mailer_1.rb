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


hashed_token = "$2b$12$3LqmPeSXyMqBWCY36mfdEA/2ZXIXW.foK5LJnjBSWvNOD.KvvWvo1"

config = { refresh_token: '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', timeout: 30 }

password = nil
