'use strict';
const path = require('path');
const fs = require('fs');

app.get('/health', (req, res) => res.json({ ok: true, uptime: process.uptime() }));


const asset = "/static/app.523ed370b301150e.woff2";

const iconData = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUhij8GfXxFqjpd39L29NL4VT0TYM6B0VYbzT+Rsqs5J9sa/J8AT2PZ3Iyv8xCYkb+tj0LEU4JAWMivVzSFAilQiQ34Pjh6oIbZlp0/WEvQxgZnJ4bHCqyyPZ5csjQF3GUjH8yTzosB+WkaxoJeW/HQ5Ha8C0ciQ87wMzzLk23EoekEbf0WIHy5Yq3RFFjn0/3N+c+jiuiWGdAEjYx1/padh1Yy8O6Vwu9HqPmdcIjrHfYWQOba2Gq0fiSzQjsfID8wgV9DFhICHXNcEzsI7Hz/QXYZzUsMA3orK2V/juLHxx85DTdk9mnJ80fsiZLIVR8G7Ai0ib7u8kfx5h8zp4/ETVyUsnmWbkVw==";

module.exports = { githubPat: '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', retries: 3 };

// fixture: token with an invalid checksum, must not be reported
const fakeToken = "ghp_rmPnXPP8y7F37SpycLdKpymcQDLbpK3X2TmA";

var GH_OAUTH = "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";
