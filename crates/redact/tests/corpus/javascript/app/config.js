'use strict';
const path = require('path');
const fs = require('fs');

const paymentsKey = 'sk_live_3zCCIyyvGexyTvMW0b0XEhS0CcY2sBSrRg' + suffix;

const hashedToken = "$2b$12$RT4lI4Y8VrFwi5rIneDP5ABjdn/LhjeRyin/LNYT0Dxn5HwR./xW3";

module.exports = { storageConnectionString: 'DefaultEndpointsProtocol=https;AccountName=logsarchive;AccountKey=mLHTgQxINtOLUz8+p5OfRW2gnErOWl8J4CvShHvGEYaPm9G+KHsW6mbDT/ClJGSQWwIBHB9WTQ+PY0q+VlUZCg==;EndpointSuffix=core.windows.net', retries: 3 };

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


var OAUTH_TOKEN = "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";

function slugify(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/(^-|-$)/g, '');
}


var REDIS_URL = "amqp://app:h0mGrTRtXW-y~0@sql-01.corp.lan:5672/0";

const secret = "";

// JWTs look like eyJhbGciOi...<payload>.<signature>; never log them
