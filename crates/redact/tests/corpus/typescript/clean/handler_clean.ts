import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const integrity = "sha512-QrJtAyMC8CwG4ILeo+qocNdaO/qwsz9iiqNTV/dfC+W1HrW0AniuU+RskREfhle4/8aZ4CD22flMWF6oRbXlkA==";
const secret = "";
// header is always eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 for HS256
  authToken?: string;
