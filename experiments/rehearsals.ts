/**
 * The pre-upgrade rehearsals by journey (`verdict rehearse <journey>`): the seed's changes that need
 * extra approval (SUP-02, "Infrastructure Update Strategy"), each the experiments that rehearse it,
 * run as one verdict. A journey whose experiments this build does not have yet says so by name.
 */
import { EXPERIMENTS } from './index.ts';

export interface Journey {
  name: string;
  /** The change it rehearses, in the seed's words. */
  what: string;
  /** Experiment names (experiments/index.ts), in the order they run. */
  experiments: string[];
}

export const JOURNEYS: Journey[] = [
  {
    name: 'gke-upgrade',
    what: 'a GKE cluster version upgrade: the zonal control plane, then the node pool (surge)',
    experiments: ['control-plane-outage', 'node-pool-upgrade'],
  },
  {
    name: 'db-maintenance',
    what: 'database instance changes: Cloud SQL maintenance or failover, and a Memorystore failover',
    experiments: ['database-maintenance', 'cache-failover'],
  },
  {
    name: 'key-rotation',
    what: "key deletion or rotation: the license API's token signing key",
    experiments: ['key-rotation'],
  },
];

/** `all`: every journey, in this order. */
export const ALL_JOURNEYS = 'all';

export class UnknownJourneyError extends Error {}

/** The experiments a journey (or `all`) runs; throws naming the journeys, or the experiments this build lacks. */
export function journeyExperiments(name: string, have: Record<string, unknown> = EXPERIMENTS): string[] {
  const journeys = name === ALL_JOURNEYS ? JOURNEYS : JOURNEYS.filter((j) => j.name === name);
  if (!journeys.length)
    throw new UnknownJourneyError(
      `unknown rehearsal "${name}": the rehearsals are ${JOURNEYS.map((j) => j.name).join(', ')} and ${ALL_JOURNEYS}; or rehearse any operation with verdict rehearse -- <command>`,
    );
  const names = journeys.flatMap((j) => j.experiments);
  const missing = names.filter((n) => !have[n]);
  if (missing.length)
    throw new UnknownJourneyError(
      `${name} needs the experiments ${missing.join(', ')}, which this build of verdict does not have yet (verdict experiment --list shows what it has)`,
    );
  return names;
}
