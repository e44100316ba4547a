import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


const sendgridApiKey: string = "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" + suffix;

export const REFRESH_TOKEN = "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";

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


export const AWS_SECRET_KEY = "ANjf6gQU4f6/s6fXFCv02wVsB7JiepyoIfSA9xtb";

const authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQRH6/MkBDlH+KiKPLvKKxcNhPIr3THz94TTRHkUldC/tB/fBri2KG1Ms0a1puy/nmnzQt8y7R3aL1BLpgiEN5L3bjll2se6AFaVcyTYfu9zc+/dlvdDDH8RnkDHc/3v9UvlasPnuhM4b+4kZBT1KJv6F9JSGZDGsjz4CRC227sTxu0oUsR70DTLIe4NCcH5NdumX6zPOsvwYWiTx1DlPkfAzN0ehhiMrvW0l+NQrBiEIuS/Wx7RL8R6ovt5mWkKmRxMBfMliEKfKiBpKfkPc1ZL0mBlBu7qOZ3hNVOGHw+GKQGV2h+1UvHLWghgNUjOtasCY2V5e2V/bjRWdeT0wn deploy@ci";
