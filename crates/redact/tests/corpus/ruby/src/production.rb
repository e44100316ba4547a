require 'net/http'
require 'json'

req['Authorization'] = 'Bearer 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'

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


integrity = "sha512-L7w8b9x+5+aqG6Prsu+PUeeILq6Jwtm4nnnaTAMpEYTCTs1NiZdJCEzk9qX/19dY9DXHjhcCDvpo6b/tqLrz4A=="

req['Authorization'] = 'Bearer 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'

database_url = "mysql://root:${MYSQL_ROOT_PASSWORD}@db:3306/app"
