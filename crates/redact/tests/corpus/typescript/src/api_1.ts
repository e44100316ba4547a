import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export const config = { ghOauth: "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", retries: 3 } as const;

const password = "AIzaSyEXAMPLE-EXAMPLE-EXAMPLE-EXAMPLE0";

  apiKey?: string;

// old npm token: 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

const authToken = null;

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}
