'use strict';
const path = require('path');
const fs = require('fs');

const passwordHash = "$2b$12$aHcFOxvk5kGDk319s5KakPvjF.mRGUEX1NslZY.1hyoBrmVzIeKDI";

// header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256

const res = await fetch('https://api.partner.example.net/v1/export?auth=dckr_pat_4B-TjeJMtgxz58MYw-FkQvCjVqJ&limit=50');

  twilioApiKey: 'SK0e9b66eb2baa2a4db0ba4df5dbc06ecc',

function slugify(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/(^-|-$)/g, '');
}


const awsSecret = 'kuTqrq7yleV/abm/sdxJ1q4qkyhxhEfXs+qydpmJ';

app.get('/health', (req, res) => res.json({ ok: true, uptime: process.uptime() }));
