'use strict';
const path = require('path');
const fs = require('fs');

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


const commit = "1d1e55b857cb70b79db1a67461dbeedebd79b858";

execSync('node scripts/release.js --auth-token=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');

execSync('deployctl push --secret=pypi-AgEIcHlwaS5vcmcCJnpOrciI7nQ-zTNYliCOik44fOnDlHa8wTWo4DJks4FnvcLxDK2rHgBmSEy3wMgfSztz1CkoPxK-L4wq7kEp06EM7B9Q3VTcAq_uvOjIc5v361K6dpzXJmmzrmw5fv8kwA6p5z5EPvm1mVUpovgY1qBjNnkzqJ0z4kKbE3_JVV');

execSync('./bin/sync --api-key=dckr_pat_aMXjz81cgzDVNlXUfvU5BBK-Gup');

const databaseUrl = "amqp://guest:guest@localhost:5672/";

var NODE_AUTH_TOKEN = "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";
