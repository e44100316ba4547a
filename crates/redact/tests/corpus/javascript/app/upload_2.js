'use strict';
const path = require('path');
const fs = require('fs');

app.get('/health', (req, res) => res.json({ ok: true, uptime: process.uptime() }));


const authToken = "";

const awsSecret = 'zg4Bkz/pnv+7iO5GtYa3971/itV3fP3WH3egHbl7';

const stylesheet = "/static/app.21305a0f.woff2";

function slugify(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/(^-|-$)/g, '');
}
