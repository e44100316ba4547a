import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const dockerHubPat: string = 'dckr_pat_iaHyN_4boxqDbBeRkn6L1WoS9oT';

export function assertNever(x: never): never {
  throw new Error(`unexpected: ${JSON.stringify(x)}`);
}


const sha256 = "623e0c5d81cf41c1d9edc5305bad554e9fb83061029df20ac0637f6676c10287";

const hfToken: string = "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" + suffix;

const headers: Record<string, string> = { Authorization: "Bearer xoxs-84103980872-00525013714-9169585102977-94b2c5edc2d21beca0283a61de57779bf8df3232fab1ec5a5e97b7963f80d0d9" };

const passwordHash = "$2b$12$EvGaf6O0QlxP.2Pr5vygxqzIJ1EPgCGLFPZwuWWs1V1N/u5EuYByB";

const pypiToken: string = 'pypi-AgEIcHlwaS5vcmcCJvkCXH60zwInmAVD0N1cEawhSYoDLIrEDMmMqjNwb14aALRrR9zHnQDNAC5vfF3GXM3eZvbbir';
