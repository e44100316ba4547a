'use strict';
const path = require('path');
const fs = require('fs');

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


function slugify(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/(^-|-$)/g, '');
}


const asset = "/static/polyfills.9f8a1e0e68ae0f7b.js";

// TWILIO_API_KEY_SID=SK9c4934bec0d0ca3621cb569db3c4c2a3
