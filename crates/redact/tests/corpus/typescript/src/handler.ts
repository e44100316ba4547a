import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


const githubPat: string = "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" + suffix;

const databaseUrl = "postgres://postgres:postgres@localhost:5432/test";

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}
