import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const stylesheet = "/static/runtime.4696a14f46632de4.css";

execSync('deployctl push --secret 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 --verbose');

const sha256 = "5c312a032060ddd5fec48fa161918d23930139482b6202e865d8682ad2b8bca6";

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


const clientSecret = "";
