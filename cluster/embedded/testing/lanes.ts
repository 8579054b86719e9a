/**
 * The embedded network slot of the loaded cluster suites (rollouts and rehearsals under load): slot 1
 * (bridge verdict1, pods in 10.244.16.0/24, NodePorts on 127.0.1.1), apart from the calm suites and
 * `verdict cluster up` on slot 0, so that a loaded file can run next to a calm one or next to a
 * developer's cluster without sharing a bridge, a pod range or a NodePort address. make test still
 * runs the loaded suites alone (docs/testing.md, "Why the loaded suites run alone").
 */
export const LOADED_SLOT = 1;
