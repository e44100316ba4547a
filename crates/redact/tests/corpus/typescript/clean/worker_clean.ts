import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const password = load_secret(name);
  dbPassword?: string;
// JWTs look like eyJhbGciOi...<payload>.<signature>; never log them
const authToken = null;
