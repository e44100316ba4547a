import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export const PASSWD = "A1eyEqIfqlK=0JWCHik5oidpV";

const integrity = "sha512-OzSipD6u1rk+xXHwC6zAm7Or37DulroQQHDJMhPzHX3JPxD3nQdJyPeFLV2WMo/Tt+v7t0rD0/P/IY4CNoE0rw==";

const huggingFaceHubToken: string = "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" + suffix;

const integrity = "sha512-UfidUiKaTaI9QLhrB5G0RBMZSWQsiKwPLDFoZQNezatmoIMDV3bEw6szIsT4W6c45DTGoouX0GMu5Zu37lwAvg==";

execSync('python manage.py import_data --api-key=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');

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


const stylesheet = "/static/main.2ca2d1a2a00304f5.js";

const storageConnectionString: string = "DefaultEndpointsProtocol=https;AccountName=logsarchive;AccountKey=32BCuw0KrY1YRz3hk+NIIzF47tXCYFC6R9AhH6eURpewvRp6af9pRx1HwMnQPsQGsjPJiF7MFeZ6ivAcvdAWvw==;EndpointSuffix=core.windows.net" + suffix;
