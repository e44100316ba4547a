require 'net/http'
require 'json'

# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_VkoQUoFelA2bo7zRNzdX2s1IedOl3v0BHstA"

system('deployctl push --token=xoxb-77009484477-7405016705087-28381r1tOEzEd92NJfHd38Ne')

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end
