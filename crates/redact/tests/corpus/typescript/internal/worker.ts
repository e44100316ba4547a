import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const res = await fetch(`https://api.acme.io/v1/events?access_token=dckr_pat_8WpUFWbTV91XW8eBIneeIxMGW4m&limit=50`);

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


// TODO: rotate sendgrid_key (was 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)

const dbPassword = "sk-proj-EXAMPLE0000000000000000000000000000000000000000";

export const AWS_SECRET = "8vJhFzA7xCkW7HwU5yPzxameLqt8ydEOJBwDMGEu";
