'use strict';
const path = require('path');
const fs = require('fs');

  stripeSecretKey: 'sk_live_VkHvmrafytK6AloETau0Y6LE',

const slackWebhookUrl = 'https://hooks.slack.com/services/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';

const apiKey = "";

execSync('python manage.py import_data --token SK6256c6bda737b4b7f65831ed94759b47 --verbose');

  ghToken: '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',

const authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQwSEzB205l/qWz708Y1G5wrf4lJ06ieWBqBGVableVcUfJZs2bQspivqtrXCsB/7S1io4T42FW9fkcj+nQto8VH5auPY+aKoEVO8DYyqUTfYw6eilY+xBZLRNC8N71Unn4vdwlC4UmP0UjKZqDVYALfKRq0wrFrPIzRw48P1kUqM7JBbmC2OtDmuoFE3os1GdgayRuh1AQwo1AtrOOkhK9gwNc38oG1/lCBYan3DABLVaF9zSHeAivzPn+VpmaxTfgmA+nZ/BMqp3JHVXYMKW5mzM6ceDOB7XUZAD8ULmQFndKjhM5HQ8llD6FLKuCwx37F1gT6PjPApvlCPVoIYy deploy@ci";

const integrity = "sha512-9+sEcoWiuPRAkBQJgct15+hRE0kbDrHDRaMifLA03a1ytJvynXxGv8qyjoj+uKjpW0uno1rC8iF6uxCkI8rScw==";

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}
