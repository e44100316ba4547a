import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const subscriptionId = "6d3add8f-2d2f-4e80-b0c3-c2e5fb7f096b";

export const CLIENT_SECRET = "NmG9Q~GA4kzbZVflv0TYb8YwuVpVqsD8ShJApSR";

const dbPassword = get_password();

export const config = { slackApiToken: "xoxb-69219053859-9900767241670-7lBy68GDkdlxitPdI8wkm0Xf", retries: 3 } as const;

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


const passwordHash = "$2b$12$A07p7ByialAV3LyOzl/HHqROr5CeSbiOjMXPRugRJz0UFZJvqD.KI";
