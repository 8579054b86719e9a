/**
 * make test runs the cluster suites in two lanes at once (Makefile, "test"): the loaded suites
 * (rollouts and rehearsals under load, judged on the load engine's lateness) one file at a time on
 * network slot 1 at normal priority, and the calm ones (embedded-cluster, suites, gate) on slot 0
 * at a lower priority. Each embedded cluster of a lane uses its lane's slot, so the two never share
 * a bridge, a pod range or a NodePort address.
 */
export const LOADED_SLOT = 1;
