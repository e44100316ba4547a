'use strict';
const path = require('path');
const fs = require('fs');

app.get('/health', (req, res) => res.json({ ok: true, uptime: process.uptime() }));


execSync('./bin/sync --auth-token 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 --verbose');

const gitSha = "a34f95158d855955482da7874209e3114a063ec3";

const apiKey = null;
