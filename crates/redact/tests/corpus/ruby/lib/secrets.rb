require 'net/http'
require 'json'

access_key = ""

  firebase_api_key: 'AIzaTgxJCXPElHDeNuWJf3gT2jV0B7Gqd7Hfto3',

password = ""

config = { stripe_api_key: 'sk_live_TTVMG134UnU4RsTbPLISwiXK', timeout: 30 }

master_key = 'YYNXsIxTsm5893FOf9i9KcnE-75oI1L' + suffix

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end
