import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


execSync('./bin/sync --token=dckr_pat_DfHdkqMJGpb7URn1fiQWZSUy-uP');

const authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ5XpGrAkg478Y3JIZNEERnvy2yw0ELZi4LVabL52M6yZVYehxIPzyM9HAkM/BUniWExsb9afAdM1vPDHACJeumSfwu4/A0Y5JYKYxzGa/+/fae+9+vm1TWb2c4TuEMNvIqbKN5f+YLUpVzmzDGGpgqx4NKBMc/uYfMqfzhdqBu3aCCofg4Uwn2N3mXKgr/aTbZ4RxuDLWQzZZ5twEny+m2bJK7fLC7LCkWiDLqtf7ALY/EV7vdx8xw3mpiOnHchZfv+Xza8wha8ehNWeypHbpNA3P8pK255El9HRPVRCyqCKsoEJPZZwHZZim/4Hh5cTRh8Ath2zuJu3/7DFfULKf deploy@ci";

const integrity = "sha512-i4YGQdQ1+EmjLng0X/WB4ILn9d7X8ifyHPWPNQGqBLCYBv6HN5uCmPfZzWiEaF+s1LFpoowkXrvYhfh8Q1OTgg==";

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}
