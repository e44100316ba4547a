import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const token = "";

const rev = "9731906fa9f1d163151ea817b708c7f258fd42ad";

// old github oauth token: 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

const databaseUrl = "postgresql://app:<password>@db.internal:5432/app";

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


export interface User {
  id: string;
  email: string;
  createdAt: Date;
}
