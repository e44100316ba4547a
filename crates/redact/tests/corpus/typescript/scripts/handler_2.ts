import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


const headers: Record<string, string> = { Authorization: "Bearer ghs_OFJ7ilw5RAdG5a9t3CFFMKct6rMWTn4Ix2lF" };

export const YOUTUBE_KEY = "AIzaQZo-pjjlbSnuM9acDNxhciBqXbdRy3f6m2u";

const apiKey = process.env.API_KEY ?? '';

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}
