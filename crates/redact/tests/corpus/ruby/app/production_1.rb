require 'net/http'
require 'json'

database_url = "postgresql://app:<password>@db.internal:5432/app"

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end


AZURE_STORAGE = 'DefaultEndpointsProtocol=https;AccountName=acmeprodstore;AccountKey=oAh/FpGh0Jb9fWw5r5U/HGhyle2WRIkRD55deJOY8LRD4pYqbyjkQ4JvSYfJPyQ4iJ0eZtRX7W0FnvEjjocqKA==;EndpointSuffix=core.windows.net'
