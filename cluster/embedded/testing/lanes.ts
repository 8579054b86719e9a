/**
 * The embedded network slots of the loaded cluster suites (rollouts and rehearsals under load),
 * apart from the calm suites and `verdict cluster up` on slot 0, so that loaded files can run next
 * to each other, to a calm one or to a developer's cluster without sharing a bridge, a pod range or
 * a NodePort address. make test runs the rollout suites alone, one after another on slot 1, then the
 * outage suites side by side on slots 1, 2 and 3 (docs/testing.md, "Which suites run side by side").
 */

/** Slot 1: bridge verdict1, pods in 10.244.16.0/24, NodePorts on 127.0.1.1. */
export const LOADED_SLOT = 1;

/** Slot 2: bridge verdict2, pods in 10.244.32.0/24, NodePorts on 127.0.2.1. */
export const SECOND_LOADED_SLOT = 2;

/** Slot 3: bridge verdict3, pods in 10.244.48.0/24, NodePorts on 127.0.3.1. */
export const THIRD_LOADED_SLOT = 3;
