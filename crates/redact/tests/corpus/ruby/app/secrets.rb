require 'net/http'
require 'json'

PYPI_API_TOKEN = 'pypi-AgEIcHlwaS5vcmcCJXFaI3fxa6XM3JEqR1niBQPUFBgAqoX_SiF8dbOmhd7ePGuqvo5keYbH9Q6kfBiU2plGgxZyGX8fg8u__8YmupIAJxHa4pAsLBz1Bgkt_LGNNQAvOxNR_wZopeyH4wVG'

config = { refresh_token: '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', timeout: 30 }

config.twilio_api_key = "SK34a964daa36892479e52fb42795c4c9a"

llm_api_key = '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' + suffix

secret = ""

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end
