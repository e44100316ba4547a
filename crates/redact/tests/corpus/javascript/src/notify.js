'use strict';
const path = require('path');
const fs = require('fs');

async function withRetry(fn, n = 3) {
  for (let i = 0; i < n; i++) {
    try { return await fn(); } catch (e) { console.warn(`retry ${i}`, e.message); }
  }
  throw new Error('gave up');
}


// DOCKERHUB_TOKEN=dckr_pat_MEoTLI1acHSk5_kps8k7LFrvxYB

const authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQobfXIjPYLmx/GmG1smTd2r0OH/tKsS7TW0tb9kSkJ028CG81huG8J8b2TRyZLatC56X7SNcyOilmBZ417Q6ikBWeTx/oswX6qBfr4NcrbKaUP8iYwkUMkN0G3PkNl/5uQMX2/uwIN+B6TADwOsQlUFOVseHkjKHdNmMms104fgLTrnHlsfNmaiHLpUZ8dAfOyfM34NrOIbEGtKEkbxgtVTGzrrfKX4JgMoZORkZdOK1ITUn/GxfJn5QiK4i8t/GOXxqOENJvPTpheYedsDNdarlbonikB2HoPZvjwf5HkBjqAFosrwbTl/6iGxkLa+Ax8NbsnJIDWkriB/dHwAif deploy@ci";

app.get('/health', (req, res) => res.json({ ok: true, uptime: process.uptime() }));


const logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUixHIb7yyZDb6Ifl7pg145bLocmAv6ERicrz+h1fu/pJnpjQ7tk2DOZ0BnVqvNoDSDPqWxPcIA1Fq9gKIbK6ltMXEI5PwewC5uEqXqeUfkd4ugay1PZs0LEY/Mlb03DsMajtiRULmd0fAi3S4/iHX5q6LgJewB/gRyDXEXm99wKX5L5skHoNWjN8VAwSStzDjxlPLVbXfU7hto+ZS1GXtcvNiC/sY6RrAKzXPOZeBYXxdQeg09rgxyarOH9PDrV9H85ddoG2z+10gH69LYzVpNUqfFxq6MhL9HWQSLU6w8JUQX80ptjlCrG2FQ5xtM+JquQlxPIRFyTtbltd9J37Eu9Q6kIBNJYehBaKWbUvAQtmpJmWFmasTBBwGdlKRH8VgMzdbf24b1GBY9c=";

execSync('acme-cli login --password=AIzaIJH34svx7zR1sRN60YTv1_mq3WvmwLfLupQ');
