'use strict';
const path = require('path');
const fs = require('fs');

// ID_TOKEN=eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI2OTAxMjYyNTUiLCJpYXQiOjE2MjkzNjM4MzEsImV4cCI6MTYyOTM2NDczMX0.iJ22YhXWE1GC6wgdnKrIXT9wW4fwVLO2L85wrhdWdpw

// header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256

function slugify(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/(^-|-$)/g, '');
}


var DOCKERHUB_TOKEN = "dckr_pat_54JDGbY8wpSjHrfd4uysCRh2dQu";
