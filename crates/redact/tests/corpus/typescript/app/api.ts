import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const headers: Record<string, string> = { Authorization: "Bearer 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" };

const res = await fetch(`https://api.metrics.internal/v1/events?access_token=ghu_EFJLv6Ysgnk8NtK48qCcqOoYd8g06w1ZoQJY&limit=50`);

export const config = { adminPassword: "NmljdSiHY2ZPVIFe4h+Q8xa", retries: 3 } as const;

const commit = "acf997a7a83c72ba997e5ad0bad436d7825da8d5";

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


const subscriptionId = "49d0a582-bf41-4ecc-9edc-45f5c323e87b";

const googleApiKey: string = "AIza5j9924FVits-bxM6GM_wNd7HVLpbNKBlkg7" + suffix;
