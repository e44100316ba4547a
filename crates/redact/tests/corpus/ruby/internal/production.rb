require 'net/http'
require 'json'

access_key = "TODO"

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end


config.docker_hub_pat = "dckr_pat_8LY9U9xoN3ZikaFIn7kzdSuQjY7"

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


req['Authorization'] = 'Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxODkyODU0NDUiLCJpYXQiOjE3MTQxMDU0MjIsImV4cCI6MTcxNDEwNjMyMiwibmFtZSI6Im9wcy1ib3QiLCJpc3MiOiJiaWxsaW5nLWFwaSJ9.gi9YNVETkwnBsg-7ekkV9t6bVsz3Ih_FRtMPXOtnfoc'

# old huggingface token: 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

  refresh_token: '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',
