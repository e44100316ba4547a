import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


const hashedToken = "$2b$12$d44aY3HSn1sBeKxB/mb1ki8FswsbNq8TWboKbhBmUNaP7.Mpa6X8l";

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


const headers: Record<string, string> = { Authorization: "Bearer SK3a014273b37fa42caeb8adf6ae9657de" };
