import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const parentCommit = "f4a3fc3ae658193d2e96278dde26c787e8397f85";

const clientId = "66d9a8e9-1c45-4095-991e-977361e70d6d";

const dbPassword = null;

const sessionToken: string = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI5MjAxODIyMDYiLCJpYXQiOjE3MzE5MDQ5NDIsImV4cCI6MTczMTkwNTg0MiwibmFtZSI6IkFsaWNlIE1hcnRpbiIsInJvbGUiOiJ1c2VyIiwiaXNzIjoiaHR0cHM6Ly9hdXRoLmludGVybmFsLmFjbWUuaW8ifQ.u3hLn-EymP1jxID9nbVLsYLpnyHA7o-MYcY470BcZWA';

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


// old llm api key: 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
