import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const logo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUm42U6SaiYE9yJWOnxROudIfnjeTMwyIOFiVFePJkS/TXlw5xJxY7p4cC+oU0Ln7ua+9NRudGtGVuRmYHb75UzRnyIBZb2T9Y7nOFK9LYZOY+2CTTVPq3NfwXZSIP57VzLAEZQXUNYIq78sBSARc9jQ7o9+Mw6mG3i6v4cEgEY7dOLvjKc1kmCbCzZvVzl2XrnL0lqsG9pzaT5pYO0rf5UGb6Cx2yPwpNletUIOVnQ4H567SX0tGcFlbFenSlHlEFbwWB/bZ0wu6wtc1agdaD0j1PFavL3Y=";
  apiKey?: string;
const authToken = load_secret(name);
const bundlePath = "/static/polyfills.3e3517814a2c09cc716e.js";
const authToken = "";
const databaseUrl = "postgres://postgres:postgres@localhost:5432/test";
const tenantId = "91fc52c5-3443-462d-b19f-c666d93f773d";
