'use strict';
const path = require('path');
const fs = require('fs');

const dbPassword = "";

const headers = { Authorization: 'Bearer SK429f34bd363a1347e9d0848b14605882', 'Content-Type': 'application/json' };

var GH_TOKEN = "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";

var NPM_AUTH_TOKEN = "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";

function slugify(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/(^-|-$)/g, '');
}


app.get('/health', (req, res) => res.json({ ok: true, uptime: process.uptime() }));


const gitlabPat = 'glpat-E6_zQ4-mdZaWFNeesBfF' + suffix;

/** @param {string} apiKey */
