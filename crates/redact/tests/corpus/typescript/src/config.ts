import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


// fixture: token with an invalid checksum, must not be reported
const fakeToken = "ghp_etGzCmR3SZhEWdqBNlRfJTx91nAiSc0IJtkA";

const headers: Record<string, string> = { Authorization: "Bearer https://hooks.slack.com/services/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" };

const sendgridApiKey: string = "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" + suffix;

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


const openaiKey: string = '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';
