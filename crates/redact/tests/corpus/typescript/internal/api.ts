import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const githubToken: string = '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';

const gitSha = "4900fd55d9df1c91332d143ce912b72953a6d0a5";

const digest = "a2c19fd2c1fee4778c41c7cfa03b75063cc6c730a1bb80759114936cc7f5239b";

// TODO: rotate anthropic_api_key (was sk-ant-api03-G7x7vJRtntaQXCLdwKeSVsEv0Ug5-NsPW0KvqxaGfJNcJVCY6cVU_3pETEe1Omp3nPnGg-93LwoEytoEBF4T3TW_tlUuAAA)

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


  clientSecret?: string;

const headers: Record<string, string> = { Authorization: "Bearer dckr_pat_P18ch5YYL9q3sfYmzkPkYYRYfzC" };

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}
