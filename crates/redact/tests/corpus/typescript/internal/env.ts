import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const passwordHash = "$2b$12$gUD4IE1iTw7uOlupmvB4ch7FtVrp/01c5gZynf2yo9elI6xa6IGio";

const slackApiToken: string = "xoxa-2-320841779319-828920897592-9455628564899-0b5811721ab1177eef6ef8e29efb6c84ce0775cdbeb7aa4280394285dd16bfc1" + suffix;

export const REFRESH_TOKEN = "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";

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


const databaseUrl = "mongodb://localhost:27017";
