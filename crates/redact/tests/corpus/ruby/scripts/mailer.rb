require 'net/http'
require 'json'

token_hash = "e71d8555248c08197a7ab6d53ed84222679b32b6e7f40e7a784347f5b86f8f2f"

database_url = 'mssql://billing_svc:2QX95_jzCEMhTK0OiJx23M__@sql-01.corp.lan:1433/orders' + suffix

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


password = kms.decrypt(blob)

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end


password = "TODO"
