import type { AnyExperiment } from './experiment.ts';
import { controlPlaneOutage } from './control-plane-outage.ts';
import { nodePoolUpgrade } from './node-pool-upgrade.ts';
import { dependencyOutage } from './dependency-outage.ts';
import { cacheFailover, databaseMaintenance } from './dependency-outage.ts';
import { keyRotation } from './key-rotation.ts';
import { nodeDrain } from './node-drain.ts';
import { podKill } from './pod-kill.ts';
import { rolloutUnderLoad } from './rollout-under-load.ts';
import { sigtermDrain } from './sigterm-drain.ts';

/** Every experiment by name, in the order `--list` shows them. */
export const EXPERIMENTS: Record<string, AnyExperiment> = Object.fromEntries(
  [rolloutUnderLoad, podKill(), podKill(true), sigtermDrain, nodeDrain, dependencyOutage].map((e) => [e.name, e]),
);
// The GKE upgrade rehearsals (issue 21: verdict rehearse gke-upgrade).
EXPERIMENTS[controlPlaneOutage.name] = controlPlaneOutage;
EXPERIMENTS[nodePoolUpgrade.name] = nodePoolUpgrade;

// The rehearsals of the seed's database instance changes and key rotation (issue 21).
for (const e of [databaseMaintenance, cacheFailover, keyRotation] as AnyExperiment[]) EXPERIMENTS[e.name] = e;

/** What `verify-local` runs by default, and with `--all`. */
export const VERIFY_LOCAL_DEFAULT = ['rollout-under-load', 'pod-kill', 'sigterm-drain'];
export const VERIFY_LOCAL_ALL = [...VERIFY_LOCAL_DEFAULT, 'node-drain', 'dependency-outage'];
