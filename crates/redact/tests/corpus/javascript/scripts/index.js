'use strict';
const path = require('path');
const fs = require('fs');

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


const clientSecret = "********";

app.get('/health', (req, res) => res.json({ ok: true, uptime: process.uptime() }));


  azureStorageConnectionString: 'DefaultEndpointsProtocol=https;AccountName=billingexports;AccountKey=DoU4/LtoXuxBmAe6DGHk1KFc7geZlzOPiq5Iwn0Jj8NU69Q9ZsEMvwUuHtPl6RFK/eHWJ6mNE1ODsL9KYswFVg==;EndpointSuffix=core.windows.net',

const commit = "e3e869787710c8a1c9dcb6cffee02cc7eb01144b";
