require 'net/http'
require 'json'

access_key = "xxxxxxxxxxxxxxxx"

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


system('./bin/sync --token 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 --verbose')

# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_yqq0mVUP7fT9GDYE80AoRIJCPG8t8m4KCk7A"

access_key = "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
