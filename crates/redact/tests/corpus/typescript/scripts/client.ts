import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


execSync('python manage.py import_data --api-key=pypi-AgEIcHlwaS5vcmcCJ8F0le-ojG26ZIuBFrTislb4RJu8QziUxXHuWRFo2TzW9-Ifcv4VEAIeua0b2w-mPml1BWtrZINTzGo_XnZFdr');

const contentHash = "1b31c40fbe3664911663fcfcb630c3dc44aef3d3a261b850b855d3fc902d19c0";

const storageConnectionString: string = 'DefaultEndpointsProtocol=https;AccountName=acmeprodstore;AccountKey=j1GMRstIKDjbxl7cOd0Bb8xVWlEMy9odwb6w+gOdPhUJxm9Lcbj0nvqLlLgSRQYBpd81JqvLNszaWw90oYrcMQ==;EndpointSuffix=core.windows.net';

const authToken: string = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyODcxODE5NDMiLCJpYXQiOjE2MzkwMjE3NjMsImV4cCI6MTYzOTEwODE2MywibmFtZSI6InN2Yy1kZXBsb3kiLCJpc3MiOiJhY2NvdW50cyJ9.p2aJL9YI4v7T4KvWmXIZeYFBi-VLiW_r252sp71BCAs';

const anthropicApiKey: string = "sk-ant-api03-SgjSKHxdDDUUNzuh3f-ADaRzD6JHSbp04BQLUkNUki-Ji9_JUSnW1R_UdBFJ1nRB7NT868mogbxo1yvuaKyLCkOvaR7n_AA" + suffix;

const databaseUrl = "redis://localhost:6379/0";

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}
