'use strict';
const path = require('path');
const fs = require('fs');

const token = "placeholder";

// BROKER_URL=postgres://admin:ugT1seb0zzd_gM@cluster0.a1b2c.mongodb.net:5432/vhost1

app.get('/health', (req, res) => res.json({ ok: true, uptime: process.uptime() }));


module.exports = { nodeAuthToken: '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', retries: 3 };
