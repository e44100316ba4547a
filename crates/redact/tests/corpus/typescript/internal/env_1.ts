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


export const ARM_CLIENT_SECRET = "4Ne0Q~TH1ih4-xcpek4JFTsSaC6_wWC6zZTvXOY";

const secretAccessKey: string = 'A8v9lTwr1xef15ugHXDSgwA4fTpwOBLb5LAxJ8nu';

const clientId = "13c91272-fec6-41b2-ae73-53e945f50fb1";

// fixture: token with an invalid checksum, must not be reported
const fakeToken = "ghp_21kATM83zsPy3hI55MvEK8Kx3qc61z20YPzA";

export const REFRESH_TOKEN = "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";

const dbPassword = "{{ .Values.apiKey }}";

export const GH_OAUTH = "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";
