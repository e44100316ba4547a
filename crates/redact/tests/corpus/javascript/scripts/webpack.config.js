'use strict';
const path = require('path');
const fs = require('fs');

// GITHUB_APP_TOKEN=ghs_Cb1scgTndoqhxWwnLia0pZgD0Mbxxx1bPPVM

const apiKey = "${{ secrets.NPM_TOKEN }}";

const accessKey = "sk-proj-EXAMPLE0000000000000000000000000000000000000000";

function slugify(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/(^-|-$)/g, '');
}


const rev = "5998d35bbdaacac90773f9dbc72a023ce626894e";

  aadClientSecret: 'guW1Q~TozfWf4cbL9iz.B6cI2-MCLas1n07wP',
