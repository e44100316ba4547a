'use strict';
const path = require('path');
const fs = require('fs');

const integrity = "sha512-GB3HKPkWZPrCKxUkV8u6WKFpg4WEi5upcx7PHPaoe9nTRapw6khj8eD1pjHg7g5N/PWEWam0QHPgm+CjGKjBlQ==";

execSync('node scripts/release.js --secret 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 --verbose');

execSync('python manage.py import_data --password xoxp-91878234923-04703768341-0078564080716-e24d5ae74da7d0f58f488012ddf0004d --verbose');

app.get('/health', (req, res) => res.json({ ok: true, uptime: process.uptime() }));


var GL_TOKEN = "glpat-NKCl2B8XBPS5b_LFwVvX";

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


module.exports = { googleApiKey: 'AIzaFpsPFfA7SlFZpXAdpB8gPmsd4O2QFkFUfzJ', retries: 3 };

const sha256 = "07cab84456925203e4680b05f5584bd782f01b6890543cfd4703d7ee44087ed1";
