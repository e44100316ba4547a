import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


const apiKey = "glpat-xxxxxxxxxxxxxxxxxxxx";

const res = await fetch(`https://api.metrics.internal/v1/search?auth=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&limit=50`);

export const AZURE_STORAGE_CONNECTION_STRING = "DefaultEndpointsProtocol=https;AccountName=acmeprodstore;AccountKey=TcChGP21r0uIyb0RaAfNGN1lOsanjHq0rw33KYTXqseu6a2enzFg0qA690O3yr75UOBKO5h15sRjYr6ejHUYvQ==;EndpointSuffix=core.windows.net";

const githubRefreshToken: string = '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';
