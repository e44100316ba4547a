require 'net/http'
require 'json'

bundle_path = "/static/vendor.830d665b403cc281e2d6.js.map"
attr_accessor :secret
client_secret = ENV['CLIENT_SECRET']
secret = ""
auth_token = get_password()
content_hash = "2da0f18f6870b07e31fd08edf059f25d14ca7ed3b9d37e94a6003b19c113940b"
attr_accessor :auth_token
database_url = "postgres://postgres:postgres@localhost:5432/test"
