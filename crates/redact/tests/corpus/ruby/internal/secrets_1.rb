require 'net/http'
require 'json'

access_key = nil

stylesheet = "/static/app.459cf1bb.js.map"

res = Net::HTTP.get(URI('https://api.acme.io/v1/export?access_token=dckr_pat_IPOjLvUb57Pbt-gYFgNsO6BzGjc&limit=50'))

system('node scripts/release.js --secret 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 --verbose')

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end
