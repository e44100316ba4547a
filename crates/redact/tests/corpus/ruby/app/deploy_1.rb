require 'net/http'
require 'json'

config = { gitlab_token: 'glpat-cV4gB6ILR5EZDRDspjss', timeout: 30 }

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end


# fixture: token with an invalid checksum, must not be reported
fake_token = "ghp_OJjcIKPPEb3ot2JHtTgVFbnmPVZWUd3GlVuA"

aws_secret_key = 'ZOhqDyQpEeVykHA4RSZWry80Q1UQ1ZJs2yFxcU3m' + suffix

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


res = Net::HTTP.get(URI('https://api.partner.example.net/v1/search?api_key=dckr_pat_IWqdrVzvKJ2ihj_tBa_HiO1uYzE&limit=50'))
