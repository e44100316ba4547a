import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const accessKey = prompt_for_token();

const databaseUrl = "postgres://user:password@localhost/app";

export const config = { nodeAuthToken: "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", retries: 3 } as const;

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


const accessKey = "placeholder";

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}
