require 'net/http'
require 'json'

system('python manage.py import_data --api-key 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 --verbose')

authorized_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQGI1qMfEVDoXSwavsWGpfQ0swlPcxpC/+CaLIlFWdqM+M1bhPMR57t1HHIEBRT5NdGALdGcH6GOBX7jZNITHeOLVN45OroYlTmQSP3jAKat36B9cyRBZUPMe/QLuF/ihm8/cKVSQF2mEZoTAoguKTptsSnmCb1KwYZEgH8jhaj/1TPL8f0+pdrWI1dJPJFGwmMLo/QgnRffRS/ktZrnlHBELhQJ1A3fayIkT7rY2RKJUxFJi3v0zvsFzw5H81hTzAcO7qTDXsR7gDadSXMdIEDnbM+zbbZeF4TXtLS9FxuSE83hD0q3ccKbBsWynNmRq0xbdK2sCzDM2RRo+CJBW8 deploy@ci"

system('python manage.py import_data --auth-token=dckr_pat_Qe2tX2BlKkxJq-QQYLMkmkwqOl_')

aws_secret = 'FN7VR63mAYhzIvGLTf8GnH1xIyQpXGlPwxLiDhyV' + suffix

content_hash = "d7f7c408f7f967eefa42ef8992723ea00a43ceea6e5d8c57ce604aea97ca0e18"

def with_retries(n = 3)
  yield
rescue StandardError => e
  n -= 1
  retry if n.positive?
  raise e
end


auth_token = nil
