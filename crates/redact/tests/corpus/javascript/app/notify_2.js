'use strict';
const path = require('path');
const fs = require('fs');

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


execSync('./bin/sync --auth-token=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');

var WEBHOOK_SECRET = "5Wj7ZOvsrldILz1OTOysb";

// fixture: token with an invalid checksum, must not be reported
const fakeToken = "ghp_8HUvqEm2Cy53i7buyil8pO8M7zYBLK2sB6uA";

const dbPassword = null;

const token = "";

module.exports = { stripeKey: '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', retries: 3 };
