import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export const OAUTH_TOKEN = "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";

export const config = { mapsApiKey: "AIza_Ejt3AQP6y53LhLaY8fPVua-ObrZD8uSP8m", retries: 3 } as const;

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


const headers: Record<string, string> = { Authorization: "Bearer https://hooks.slack.com/services/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" };

const dbPassword = load_secret(name);

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}
