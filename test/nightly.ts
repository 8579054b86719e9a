/**
 * `make test-nightly` (VERDICT_NIGHTLY=1) runs everything `make test` runs plus the repeated
 * statistical runs: the detector repeated on a noisy machine (five consecutive naive-control runs),
 * kind's broken-release cross-check, more endpoint-propagation samples. `make test` keeps one of
 * each measurement; a nightly-only case is not registered at all there (never a skip counted as a pass).
 */
export const NIGHTLY = process.env.VERDICT_NIGHTLY === '1';

/** `nightly` repetitions under `make test-nightly`, else `quick`. */
export const repeats = (quick: number, nightly: number): number => (NIGHTLY ? nightly : quick);
