import { readFileSync } from 'node:fs';
import type { Request, Response } from 'express';

// TODO: rotate gh_oauth (was 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)

const hashedToken = "$2b$12$qAcl/5reUpMme5pH6ApO0IUeiMZs9aWmJ6t6tJV3t0cyI8/dgdbWZ";

export const GITHUB_PAT = "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";

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}


const authorizedKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQbTs0EAxhAKn+xmVzJjAmOMG0oHN4mlQKM1c/VgHz2PQ4RumLDKiPHANOYtZNnBp0YsviMs2xf+j58Hiol86rT968LfTmmIFMmh9yLwWzXdNJ4z7rHZJn1/3AJCFRdvC/ueOb5d1bNkXYaQd5Rnp/sF6t3hlPd/lXqSOcChIkqhn+vAwSLBr5JD/zOl+zYuldOh8sZOP7HRUuu8PC7eqOFuVpVYPGu51//LF4j9pNLObCpN2eELjEu8o4z+QEoWv24XZOzJ0lDJGlwQIu8TEC4CPFEDpDyfGEsaYRw/TMDiYDLHv1h7+7KWROC19ESJJ0jXCDwkmsVb2DiZleGr2l deploy@ci";

const pypiToken: string = 'pypi-AgEIcHlwaS5vcmcCJAf5eWjrOfOYPZHzeoanESTxH7lzS4DGaq5RdbgmJ01_t23xmtXnqZSGxI06qbF5eAh5Io-xgVqIjqSxY8gOKH3reDOe5qrJTjHFFMWVBy3pslFCzII6Qa-yoA';

const paymentsKey: string = 'sk_live_Na64tmzyU3P4qIH2xt3hjd0w';
