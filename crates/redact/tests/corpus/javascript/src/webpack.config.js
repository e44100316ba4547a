'use strict';
const path = require('path');
const fs = require('fs');

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


// fixture: token with an invalid checksum, must not be reported
const fakeToken = "ghp_RpABkRJMJsT2w4I58Ho3shOLpMaNlC40bFaA";

const authToken = process.env["AUTH_TOKEN"];

  adminPassword: 'eZBNx6xMuUdv=8MqPN',

app.get('/health', (req, res) => res.json({ ok: true, uptime: process.uptime() }));


const ghToken = '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' + suffix;

  hfToken: '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',
