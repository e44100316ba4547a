require 'net/http'
require 'json'

config = { access_key_id: 'AKIARAHX6RSKSPVULJXA', timeout: 30 }

request_id = "432a2131-c1df-4878-b257-d95415738fa9"

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


commit = "61af3cd73f7b89a5128070054e83ed6fcbc2fa3b"

system('deployctl push --api-key=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')

AZURE_CLIENT_SECRET = 'o~P0Q~gWzS.pZY1uIjUFB4diA9pqi50bX.~8b'

git_sha = "bab4b7ef0d1b511a05d581cc7ecbf70d9ef1fdbb"

  webhook_url: 'https://hooks.slack.com/services/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',
