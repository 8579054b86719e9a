/**
 * Progress for the cluster test files: each line on stderr with the seconds since the run began,
 * so a slow phase (deploy, warm-up, outage, recovery, settle) shows in the log of any run.
 */
export function timedSay(started = Date.now()): (message: string) => void {
  return (m) => process.stderr.write(`  +${((Date.now() - started) / 1000).toFixed(1)} s ${m}\n`);
}
