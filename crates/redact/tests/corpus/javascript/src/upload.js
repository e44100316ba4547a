'use strict';
const path = require('path');
const fs = require('fs');

const hashedToken = "$2b$12$GeOaEFjUbMWpUc.KcKk1glpyEg9tl9eEbcFIVioXKJTkYUzaacDeJ";

app.get('/health', (req, res) => res.json({ ok: true, uptime: process.uptime() }));


const pypiToken = 'pypi-AgEIcHlwaS5vcmcCJrWlxDa87OJqkQiVLqhTfUzPCSCHVfAPNoXOJo6awBUFgeLk9KxJbDBVnwsvWzcI08taohVef5WSTxgaZ4d5cPti5s9B4idWo_h0zr19rEU1eKAARmKRz9ME0DWFn7ELW4bH4BuxMbKqatsavNUYNm9uARwXK6' + suffix;

const refreshToken = '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';
