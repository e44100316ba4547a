require 'net/http'
require 'json'

sha256 = "3507aafa3292c44f96f31670d33a5153d93dc1d633be557890c0d198ec21491b"

TOKEN = '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'

secret = "xoxb-your-bot-token-here"

  payments_key: 'rk_live_PYfDGBq2YzsZC3zfnMAHLwnOlQuCt8PAAX',

hashed_token = "$2b$12$ZKTSqvwhTVRB.eBM2JJT0P7Pvu5Gsy2Ln2wcwokJ2f5BZmuFx8gQE"

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end


ACCESS_KEY_ID = 'ASIAAQHILDAEXE7UCQCY'
