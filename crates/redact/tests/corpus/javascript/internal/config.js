'use strict';
const path = require('path');
const fs = require('fs');

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


const res = await fetch('https://api.acme.io/v1/search?access_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIzMzU1MjE0NDIiLCJpYXQiOjE3MjExNjEwOTksImV4cCI6MTcyMTE2NDY5OSwiaXNzIjoiYWNjb3VudHMifQ.gjsDENs4R8vHPyqC0ZU2byR9b7n9RYGZ_V34KR8RBCQ&limit=50');

module.exports = { awsAccessKeyId: 'AKIAJI5BSWGBQUKFYBBC', retries: 3 };

const anthropicApiKey = 'sk-ant-api03-RPtqgakrvQ2Bq3lkAkmobXw6El0rVJhk0bNWfrSHIugTcO2Ei66gvc7MUQAUEcfn8I0zzu20YT6rPlbQBYhtwtCSPC9EdAA';

const password = "";

const sendgridApiKey = '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' + suffix;
