import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


const ghOauth: string = "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" + suffix;

const githubRefreshToken: string = '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';

const traceId = "cd6dcd82-611c-4611-a68f-144a0adb86c2";

const apiKey = process.env.API_KEY!;

const secret = "sk_test_EXAMPLEKEY0000000000000000";

export const config = { huggingFaceHubToken: "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", retries: 3 } as const;
