import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export const config = { ghToken: "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", retries: 3 } as const;

// fixture: token with an invalid checksum, must not be reported
const fakeToken = "ghp_HnrvgZrwToQ50Aij2rZYbbCbPzJ4G93p9jHA";

const tokenHash = "4579474a17becfc60a84a6b65c81032a8dc26c0ed8e5eb014b58f271ada7e519";

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}
