require 'net/http'
require 'json'

config = { azure_client_secret: 'vAL3Q~-zfOl_pISRbqM6BdoH3OH3vPh-iI69P', timeout: 30 }

# JWTs look like eyJhbGciOi...<payload>.<signature>; never log them

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


integrity = "sha512-wuWjAgcudBJ8HSNgh9yqwlcsZ8Vl5ljPiMovlv/6wESwCa6MQQs3/UCR1Skp6p2/ymSSwpQc2MWbMN+4wUd19g=="
