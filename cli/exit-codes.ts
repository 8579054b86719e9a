/** Exit codes live with the verdicts (lib/verdict.ts); the CLI adds its usage error. */
export { ExitCode, exitCodeOf } from '../lib/verdict.ts';

/** A mistake the user can fix (bad flag value, bad config): printed without a stack, exit 64. */
export class UsageError extends Error {}
