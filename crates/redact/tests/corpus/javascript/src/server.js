'use strict';
const path = require('path');
const fs = require('fs');

  openaiApiKey: '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',

const authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQIexqTWNRwGpA15UcGncAR38nV1/yfAe/UDsk51IyaCuXSnEB8p2u1vGk5XA6bN53zZCUOx9BfonOAbmk4Nc3eynhOy4eSRUp/x4qkoYC0iASF3OSocL8ewJTKGj+ZgGxWcERpi0kNG5jFV5t1Yf72aJSpeyvYN0bYtvqDNkyx3+EgBZWCKf5P2JTT6UFGrNhv0L35Oq7zqr9j4j+J/UFzD6jm1AWddhaiuTNSfqKsE2qoAfdXoBKD+3QeDnLjZlRecFUsj08dYvT28lYnzk5w48Lq/lM4sv1edNT1B2hU2h74IXBKzXd6S2ibpje7QHBwRC6SDna96JKp3+YOJne deploy@ci";

const azureStorage = 'DefaultEndpointsProtocol=https;AccountName=mlartifacts01;AccountKey=YpuECvmrT0YENawlWUBBZL4BGktbw+MSMvTz32Dx0LZ6vFHjQvlC7JPd4BKdUZnk5yAdftVk6S3Xo8pjFzVpUw==;EndpointSuffix=core.windows.net';

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


execSync('acme-cli login --password sk_live_QSddRPxlET24SxBekZHTsHDxE4E53cnshl --verbose');

// MONGO_URI=amqp://root:e_FfLHQ7vVwMha8GWxt_xMBG5SLB@cache.prod.svc.cluster.local:5672/vhost1

function slugify(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/(^-|-$)/g, '');
}
