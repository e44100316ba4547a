import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

const authToken = "";
const authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ8p1du1I5fm+4zvPX/Z3f9dDNxCVZCZn1X0vP0PNUky1IqlnLYQElxY7bc+5u8KBF0vPZhD/VGCS/HseHDm7H+LDGJW21zROA2/naADL3mLZUABlPBVHccXdy4vHgk60mp+JzPSJIw9VruidBuDrH2Cm+RiW27VcxGLUvOgbiIinMFB8DEfnUWJ+x8GpF1B6g/yKX0NxpCSbR9uMKAtHDd7Y7LLwlCfWC+0xoch//JwUKorpTMcPyZLTU5MZNHUadzupMbW4sdlTyjuyuCFHbY0YK9q7zM5KWUsHZOuUrWUQ6RnkLEJYJQFOr9sjtX8zb/8Ke/itgqYzV8UySttmx deploy@ci";
const databaseUrl = "mongodb://localhost:27017";
const databaseUrl = "redis://localhost:6379/0";
const dbPassword = kms.decrypt(blob);
