/**
 * Exit codes of `verdict`. CI treats anything but PASS (0) as "do not promote".
 * The verdict codes are stable: pipelines branch on them.
 */
export const ExitCode = {
  PASS: 0,
  FAIL: 1,
  INCONCLUSIVE: 2,
  ERROR: 3,
  /** Bad flags or bad configuration (sysexits EX_USAGE). */
  USAGE: 64,
} as const;

/** A mistake the user can fix (bad flag value, bad config): printed without a stack, exit 64. */
export class UsageError extends Error {}
