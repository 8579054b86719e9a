/**
 * The embedded network slot of the loaded cluster suites (rollouts and rehearsals under load): slot 1
 * (bridge verdict1, pods in 10.244.16.0/24, NodePorts on 127.0.1.1), apart from the calm suites and
 * `verdict cluster up` on slot 0, so that a loaded file can run next to a calm one or next to a
 * developer's cluster without sharing a bridge, a pod range or a NodePort address. make test still
 * runs the loaded suites alone (docs/testing.md, "Why the loaded suites run alone").
 */
export const LOADED_SLOT = 1;

/** A second loaded slot (bridge verdict2, pods in 10.244.32.0/24, NodePorts on 127.0.2.1). */
export const SECOND_LOADED_SLOT = 2;

/** A third loaded slot (bridge verdict3, pods in 10.244.48.0/24, NodePorts on 127.0.3.1). */
export const THIRD_LOADED_SLOT = 3;
