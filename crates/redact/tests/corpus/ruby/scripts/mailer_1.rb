require 'net/http'
require 'json'

  payments_key: 'rk_live_Xeq6ESsqy4UqjAqyttlDSbYmX70a0DCesA',

password_hash = "$2b$12$7/27GNrdX37RJHYRkXDmIy1w14eScy/PslQMmv1T0Slln.4ns1YA8"

config.docker_hub_pat = "dckr_pat_xN7KPKOwS8fbT4IAQlycZliKsz2"

req['Authorization'] = 'Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI2NTQxMjEzMjQiLCJpYXQiOjE3NTc5NzMyODEsImV4cCI6MTc1Nzk3NDE4MSwibmFtZSI6IkNoZW4gV2VpIiwiaXNzIjoiYmlsbGluZy1hcGkifQ.gvr7Vtp-RjH09MNH70w-gqnspQmGjcvhsUCeyBBX0bU'

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end


system('deployctl push --token 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 --verbose')

database_url = "amqp://guest:guest@localhost:5672/"
