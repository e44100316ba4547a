'use strict';
const path = require('path');
const fs = require('fs');

// fixture: token with an invalid checksum, must not be reported
const fakeToken = "ghp_dxyCfVArsXCnjqB6TmOZko3pvLhjdw3eZz9A";

execSync('./bin/sync --token=https://hooks.slack.com/services/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');

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


execSync('acme-cli login --auth-token=pypi-AgEIcHlwaS5vcmcCJZWcPldCvGYTD9cYHy62C39lvpAx4aATJewyYH1jPlJruSacjhLAx0e_e8cpcFTDfcm13L6xyZ5_R5qGPJ3s4Iz4KFg5');

var ANTHROPIC_API_KEY = "sk-ant-api03-LD-6Wc-MTN5OiHNnmDf3gfFAYwm746x4JG0s7tsAObGTiL6jEOCru6jDv8pkHqqaLJzuvPUOJwpZ_s8dOA2r0gQcktfCSAA";
