'use strict';
const path = require('path');
const fs = require('fs');

const password = config.get('password');
const apiKey = "none";
const parentCommit = "4bc3b796c38c7a54baa4789e3e0a9cb2addd04ad";
const databaseUrl = "redis://localhost:6379/0";
/** @param {string} authToken */
const authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQJpdC/tT3ex4KnOpQsUOdvUzJo6d75/eeBdyDbtzwL5it2uJsQrFmOZSGXNh2x8ZLfRgDNuciXkaJQmesGhfERWoGdT6uz6zEJxh7Vc6FVqj2pMlb/sU6ZQRDGn985N/sikVyvu+hfpgH/bJ9zhnlMn7txh21FnsSgAxsv3e5hc99N+865JeO3WW5ak+k/N+2VBsLy0xdwIaymr9T6xmyGfriNRnqxWadnoJ/5N4yQ1vk3/S3UdZySGat/BXM7vwxkFcpX+3VRXATKxCkdQat2NMcn4X8mjS2Yq+gAfk2vszEMWZ9yHJokhXM4nT6E/h9RsNslnbqXkl/MZC/JVE3 deploy@ci";
const authToken = process.env.AUTH_TOKEN;
