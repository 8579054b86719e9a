import type { Experiment } from './experiment.ts';
import { rolloutUnderLoad } from './rollout-under-load.ts';

/** Every experiment by name, in the order `--list` shows them. */
export const EXPERIMENTS: Record<string, Experiment<any>> = {
  [rolloutUnderLoad.name]: rolloutUnderLoad,
};

/** What `verify-local` runs by default, and with `--all`. */
export const VERIFY_LOCAL_DEFAULT = ['rollout-under-load'];
export const VERIFY_LOCAL_ALL = Object.keys(EXPERIMENTS);
