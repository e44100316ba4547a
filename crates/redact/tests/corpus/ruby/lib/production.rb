require 'net/http'
require 'json'

BOT_TOKEN = 'xoxp-20051712379-99979836213-0412031242259-14eeff233bf6cdd272e4fbcb1a531124'

rev = "bc55066457a747a49e4e055b89abe4df90b6a484"

ci_job_token = 'glpat-e0icXuXFTZFlGI8u3zcn' + suffix

config.azure_client_secret = "I7C9Q~C4rGvCulh8FlY22T9h2qo2f9K41j.y7C"

JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI3NzAxMjA4ODkiLCJpYXQiOjE2ODM0MDQ2MTgsImV4cCI6MTY4MzQwNTUxOH0.1Io_hA0WkhxvXa6bgwb9SrfeCP8ON2bq_U1qjvxjBE4'

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
end
