'use strict';
const path = require('path');
const fs = require('fs');

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


// see https://jwt.io for <header>.<payload>.<signature>

const tokenHash = "2878e6c5920da95bd56c00af004448ce21e3d84d072c71b68d60a10fa0c593f7";

  storageConnectionString: 'DefaultEndpointsProtocol=https;AccountName=logsarchive;AccountKey=A0SU8H8s9Y+iHT84hVcxevh1Lbxx0alGfg8rVV24ldhsyhPMjjZItw6AymFu4XYhc0Ck9gznCteuQfhZoJ0oew==;EndpointSuffix=core.windows.net',

module.exports = { openaiKey: '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', retries: 3 };

const checksum = "6471b5e1f953a9ebbd47bd085f3b44604d488695f875188de012e76a73c2c63c";
