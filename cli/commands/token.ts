import { Command, InvalidArgumentError } from 'commander';
import { SignJWT } from 'jose';
import { UsageError } from '../exit-codes.ts';
import { DEFAULT_TOKEN_TTL_S, GATE_DEFAULTS, longestGateRunMs } from '../../gate/rollback.ts';
import { spell } from '../../lib/checks/token.ts';

/** `verdict token`: mints an HS256 test token for the license API (smoke tests, local runs). */
export function tokenCommand(): Command {
  return new Command('token')
    .description('mint an HS256 bearer token for the license API (for smoke tests, local runs and a verdict gate)')
    .option('--secret-env <name>', 'environment variable that holds the HS256 secret', 'JWT_SECRET')
    .option('--sub <subject>', 'token subject', 'verdict-smoke')
    .option(
      '--ttl <seconds>',
      `lifetime in seconds (default ${DEFAULT_TOKEN_TTL_S} = ${spell(DEFAULT_TOKEN_TTL_S * 1000)}: the longest verdict gate run with its default flags, ${spell(longestGateRunMs(GATE_DEFAULTS))}, plus 5 min, rounded up to 5 min)`,
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive whole number of seconds');
        return n;
      },
      DEFAULT_TOKEN_TTL_S,
    )
    .addHelpText('after', '\nExample:\n  JWT_SECRET=... verdict token --sub smoke > token.txt')
    .action(async (opts: { secretEnv: string; sub: string; ttl: number }) => {
      const secret = process.env[opts.secretEnv];
      if (!secret || secret.length < 32) {
        throw new UsageError(`set ${opts.secretEnv} to the license API's HS256 secret (at least 32 characters)`);
      }
      const token = await new SignJWT({ licenses: ['*'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(opts.sub)
        .setIssuedAt()
        .setExpirationTime(`${opts.ttl}s`)
        .sign(new TextEncoder().encode(secret));
      process.stdout.write(token + '\n');
    });
}
