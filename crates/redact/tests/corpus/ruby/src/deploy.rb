require 'net/http'
require 'json'

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


  pypi_token: 'pypi-AgEIcHlwaS5vcmcCJReAgNc8ouC1-dAh68T7gdt5VBi2p3eAMWtzoQuo7taasGJa3SdDWxZNX0MUrS0Kn0F3U7NcxY',

config.gitlab_pat = "glpat-g7F605zBY8HJl4ArePJb"

stylesheet = "/static/runtime.7877b536e93416232dc4.js.map"

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end


CLIENT_SECRET = 'EiB5Q~uyoFO.vbMFbQV1hWD_bjAhh9~jYhoLQSPF'

access_key = ENV['ACCESS_KEY']
