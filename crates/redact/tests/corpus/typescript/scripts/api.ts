import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


const alertsWebhook: string = 'https://hooks.slack.com/services/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';

const armClientSecret: string = 'eAy8Q~~g9ZJScfwNWPmX_v_Y_iBURMaDkk_bHC';

const rev = "8be27e151dd783fc905510a8e366e10cd79cc363";

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}
