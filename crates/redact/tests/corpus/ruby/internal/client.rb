require 'net/http'
require 'json'

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end


SLACK_BOT_TOKEN = 'xoxs-98241700312-11971959381-5621049422518-ea32abe24f8b84a5e483e15e0dd18b9d58d6abfbfc6f6a3570e915ee5113cfc7'

OAUTH_TOKEN = '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'

azure_storage = 'DefaultEndpointsProtocol=https;AccountName=billingexports;AccountKey=QtNkiYCvqx0qwEd+zZK1AHVv9CJwM7zc2pQxvYgn6QmpwPrEVOsPvSoKFBPFxFl53LapctJQXg7f5gqdP/MawQ==;EndpointSuffix=core.windows.net' + suffix

db_password = ""
