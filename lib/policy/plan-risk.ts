/**
 * Risk of an OpenTofu plan's resource changes, by rules that are data: a default table for the
 * seed's high-risk classes ("Infrastructure as Code Deployment": database instance changes, GKE
 * version upgrades, network configuration changes, key deletion or rotation), then any destroy or
 * replace of a stateful resource, then the rest. `verdict.config.yaml` extends or overrides the
 * table (`planRisk`, schema below). Pure: the plan is already parsed (lib/iac/plan.ts).
 *
 * A change's risk is the highest of every rule that matches it (so adding a rule can never lower a
 * risk by accident; to lower one, override the default rule by its id or disable it). A change no
 * rule matches is low. An action this code does not know is high: a person must look.
 *
 * Attribute values are never copied out of the plan except the rule-watched attributes' own scalar
 * values that the plan does not mark sensitive: a plan holds secrets in plain text (a secret
 * version's payload, a service-account key's private key).
 */
import { z } from 'zod';
import type { PlanJson, PlanResourceChange } from '../iac/plan.ts';

export const RISKS = ['high', 'medium', 'low'] as const;
export type Risk = (typeof RISKS)[number];
const RISK_RANK: Record<Risk, number> = { low: 0, medium: 1, high: 2 };

/** What a change does, from `change.actions` (OpenTofu's JSON output format, "Change Representation"). */
export type ChangeKind = 'create' | 'update' | 'replace' | 'delete' | 'forget' | 'read' | 'no-op' | 'unknown';
export const RULE_ACTIONS = ['create', 'update', 'replace', 'delete', 'forget'] as const;

export const planRiskRuleSchema = z
  .strictObject({
    /** Names the rule in reports; a rule in the config with a default rule's id replaces it. */
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and dashes, e.g. cloud-sql-restart'),
    risk: z.enum(RISKS),
    /** Resource types, `*` globs (e.g. `google_compute_*`). */
    types: z.array(z.string().min(1)).min(1).optional(),
    /** Resource addresses, `*` globs (e.g. `module.db.*`). */
    addresses: z.array(z.string().min(1)).min(1).optional(),
    /** Which changes it is about (default: every change: create, update, replace, delete, forget). */
    actions: z.array(z.enum(RULE_ACTIONS)).min(1).optional(),
    /**
     * For updates: only when one of these attribute paths changes (`.`-separated, `*` for one step
     * such as a list index: `settings.*.tier`). Creates, replaces and deletes change every attribute.
     */
    attributes: z.array(z.string().min(1)).min(1).optional(),
    /** One sentence: what can go wrong. */
    why: z.string().min(1),
  })
  .refine((r) => r.types || r.addresses, { message: 'a rule needs `types` or `addresses` (or both)' });

export type PlanRiskRule = z.infer<typeof planRiskRuleSchema>;

const replaceOrDelete = ['replace', 'delete'] as const;

/**
 * The default table. Resource types and attribute names are the Google provider's (registry docs of
 * hashicorp/google: google_sql_database_instance `settings.tier`, `database_version`,
 * `settings.database_flags`; google_container_cluster `min_master_version`, `node_version`;
 * google_container_node_pool `version`; google_kms_crypto_key `rotation_period`, ...).
 */
export const DEFAULT_PLAN_RISK_RULES: readonly PlanRiskRule[] = [
  {
    id: 'cloud-sql-instance-replace',
    risk: 'high',
    types: ['google_sql_database_instance'],
    actions: [...replaceOrDelete],
    why: 'the Cloud SQL instance is destroyed or replaced by a new one: downtime, and its data is lost unless restored',
  },
  {
    id: 'cloud-sql-instance-restart',
    risk: 'high',
    types: ['google_sql_database_instance'],
    actions: ['update'],
    attributes: [
      'database_version',
      'settings.*.tier',
      'settings.*.edition',
      'settings.*.database_flags',
      'settings.*.availability_type',
      'settings.*.ip_configuration',
      'settings.*.data_cache_config',
    ],
    why: 'this change restarts the Cloud SQL instance (machine tier, version, flags, availability, network): downtime',
  },
  {
    id: 'gke-cluster-replace',
    risk: 'high',
    types: ['google_container_cluster'],
    actions: [...replaceOrDelete],
    why: 'the GKE cluster is destroyed or replaced: every workload on it goes down',
  },
  {
    id: 'gke-version',
    risk: 'high',
    types: ['google_container_cluster'],
    actions: ['update'],
    attributes: ['min_master_version', 'node_version', 'release_channel'],
    why: 'a GKE control-plane or node version upgrade (or a release-channel change that leads to one)',
  },
  {
    id: 'gke-node-pool',
    risk: 'high',
    types: ['google_container_node_pool'],
    actions: ['update', ...replaceOrDelete],
    attributes: ['version', 'node_config', 'node_locations'],
    why: 'a node-pool version upgrade, node-config change or recreation: its nodes are drained and replaced',
  },
  {
    id: 'network',
    risk: 'high',
    types: [
      'google_compute_network',
      'google_compute_subnetwork',
      'google_compute_firewall',
      'google_compute_firewall_policy*',
      'google_compute_network_firewall_policy*',
      'google_compute_router',
      'google_compute_router_nat',
      'google_compute_router_interface',
      'google_compute_route',
      'google_compute_network_peering*',
      'google_service_networking_connection',
      'google_compute_global_address',
      'google_vpc_access_connector',
    ],
    why: 'a network configuration change (VPC, subnet, firewall, router/NAT, private service connection) can cut traffic',
  },
  {
    id: 'kms-key-destroy',
    risk: 'high',
    types: ['google_kms_crypto_key', 'google_kms_crypto_key_version', 'google_kms_key_ring'],
    actions: [...replaceOrDelete],
    why: 'a KMS key (version) is destroyed: data encrypted with it cannot be read any more',
  },
  {
    id: 'kms-key-rotation',
    risk: 'high',
    types: ['google_kms_crypto_key', 'google_kms_crypto_key_version'],
    actions: ['update'],
    attributes: ['rotation_period', 'next_rotation_time', 'version_template', 'primary', 'state', 'destroy_scheduled_duration'],
    why: 'a KMS key rotation or key-version state change',
  },
  {
    id: 'secret-deletion',
    risk: 'high',
    types: ['google_secret_manager_secret', 'google_secret_manager_secret_version', 'google_secret_manager_regional_secret*'],
    actions: [...replaceOrDelete],
    why: 'a Secret Manager secret (version) is deleted: whatever reads it fails',
  },
  {
    id: 'secret-rotation',
    risk: 'high',
    types: ['google_secret_manager_secret', 'google_secret_manager_secret_version'],
    actions: ['update'],
    attributes: ['rotation', 'enabled', 'expire_time', 'ttl'],
    why: 'a Secret Manager rotation, expiry or version-state change',
  },
  {
    id: 'service-account-key-deletion',
    risk: 'high',
    types: ['google_service_account_key'],
    actions: [...replaceOrDelete],
    why: 'a service-account key is deleted: whatever authenticates with it fails',
  },
  {
    id: 'stateful-destroy',
    risk: 'medium',
    types: [
      'google_sql_*',
      'google_alloydb_*',
      'google_spanner_*',
      'google_bigtable_*',
      'google_bigquery_dataset',
      'google_bigquery_table',
      'google_firestore_database',
      'google_datastore_*',
      'google_redis_instance',
      'google_redis_cluster',
      'google_memcache_instance',
      'google_filestore_instance',
      'google_storage_bucket',
      'google_compute_disk',
      'google_compute_region_disk',
      'google_compute_snapshot',
      'google_compute_image',
      'google_pubsub_topic',
      'google_pubsub_subscription',
      'google_artifact_registry_repository',
      'google_service_account',
      'google_dns_managed_zone',
      'kubernetes_persistent_volume*',
      'kubernetes_stateful_set*',
    ],
    actions: [...replaceOrDelete],
    why: 'a stateful resource is destroyed or replaced: what it holds is gone unless restored',
  },
];

export const planRiskConfigSchema = z
  .strictObject({
    /** Rules of your own, checked with the defaults; one with a default rule's id replaces that rule. */
    rules: z.array(planRiskRuleSchema).default([]),
    /** Default rules to drop, by id. */
    disable: z.array(z.string()).default([]),
    /** The lowest risk that needs an approval (default: high). */
    failOn: z.enum(['high', 'medium']).default('high'),
  })
  .superRefine((c, ctx) => {
    const known = new Set(DEFAULT_PLAN_RISK_RULES.map((r) => r.id));
    c.disable.forEach((id, i) => {
      if (!known.has(id))
        ctx.addIssue({
          code: 'custom',
          path: ['disable', i],
          message: `no default rule is called "${id}" (the defaults: ${[...known].join(', ')})`,
        });
    });
    const seen = new Set<string>();
    c.rules.forEach((r, i) => {
      if (seen.has(r.id)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `"${r.id}" is used twice` });
      seen.add(r.id);
    });
  });

export type PlanRiskConfig = z.infer<typeof planRiskConfigSchema>;

/** The defaults with the config's rules: overrides in place, new rules after, disabled ones dropped. */
export function effectiveRules(config?: Partial<PlanRiskConfig>): PlanRiskRule[] {
  const own = config?.rules ?? [];
  const byId = new Map(own.map((r) => [r.id, r]));
  const drop = new Set(config?.disable ?? []);
  const out = DEFAULT_PLAN_RISK_RULES.filter((r) => !drop.has(r.id)).map((r) => byId.get(r.id) ?? r);
  for (const r of own) if (!DEFAULT_PLAN_RISK_RULES.some((d) => d.id === r.id)) out.push(r);
  return out;
}

// ------------------------------------------------------------------ classification

export interface WatchedValue {
  path: string;
  /** Short scalar values as JSON text; null when absent; `(sensitive)` or `(known after apply)` when hidden. */
  before: string | null;
  after: string | null;
}

export interface ClassifiedChange {
  address: string;
  type: string;
  /** `managed` or `data`. */
  mode: string;
  kind: ChangeKind;
  /** The plan's own `change.actions`. */
  actions: string[];
  risk: Risk;
  /** Every rule that matched, highest risk first. */
  rules: Array<{ id: string; risk: Risk; why: string }>;
  /** Attribute paths that change (before/after and what is known only after apply), at most 20. */
  changedPaths: string[];
  changedPathCount: number;
  /** `replace_paths` of the plan, as dotted paths. */
  replacePaths: string[];
  /** The plan's `action_reason`, when given. */
  actionReason: string | null;
  /** The deposed object's key, when the change is to a deposed object. */
  deposed: string | null;
  /** The watched attributes' values where the plan lets them be shown. */
  watched: WatchedValue[];
}

export interface PlanClassification {
  /** Changes that do something (no-op and data reads left out), highest risk first. */
  changes: ClassifiedChange[];
  /** Counts of what was left out. */
  noOp: number;
  reads: number;
  drift: number;
  byRisk: Record<Risk, number>;
}

/** `change.actions` → one kind (the two replace orders are one kind: both delete the old object). */
export function changeKind(actions: readonly string[]): ChangeKind {
  const a = [...actions].sort().join(',');
  switch (a) {
    case 'no-op':
      return 'no-op';
    case 'read':
      return 'read';
    case 'create':
      return 'create';
    case 'update':
      return 'update';
    case 'delete':
      return 'delete';
    case 'create,delete':
      return 'replace';
    case 'forget':
      return 'forget';
    case 'create,forget':
      // The old object is forgotten (left running, no longer managed), a new one is created.
      return 'create';
    default:
      return 'unknown';
  }
}

function globRe(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

/** Leaf paths of a JSON value (objects and arrays walked; an empty object or array is a leaf). */
function leaves(v: unknown, prefix: string[], out: Map<string, unknown>): void {
  if (v !== null && typeof v === 'object') {
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v as object);
    if (entries.length === 0) out.set(prefix.join('.'), v);
    for (const [k, x] of entries) leaves(x, [...prefix, k], out);
    return;
  }
  out.set(prefix.join('.'), v);
}

/** Paths whose value differs between before and after, plus every path unknown until apply. */
export function changedPaths(change: PlanResourceChange['change']): string[] {
  const b = new Map<string, unknown>();
  const a = new Map<string, unknown>();
  if (change.before !== undefined && change.before !== null) leaves(change.before, [], b);
  if (change.after !== undefined && change.after !== null) leaves(change.after, [], a);
  const out = new Set<string>();
  for (const [p, v] of b) if (!a.has(p) || JSON.stringify(a.get(p)) !== JSON.stringify(v)) out.add(p);
  for (const [p, v] of a) if (!b.has(p) || JSON.stringify(b.get(p)) !== JSON.stringify(v)) out.add(p);
  if (change.after_unknown && typeof change.after_unknown === 'object') {
    const u = new Map<string, unknown>();
    leaves(change.after_unknown, [], u);
    for (const [p, v] of u) if (v === true) out.add(p);
  }
  out.delete('');
  return [...out].sort();
}

/** Does the pattern (`settings.*.tier`) cover the path (`settings.0.tier.x`), or the path (`settings`) contain it? */
export function pathMatches(pattern: string, path: string): boolean {
  const p = pattern.split('.');
  const c = path.split('.');
  const n = Math.min(p.length, c.length);
  for (let i = 0; i < n; i++) if (p[i] !== '*' && p[i] !== c[i]) return false;
  return true;
}

function valueAt(v: unknown, path: string[]): unknown {
  let cur: unknown = v;
  for (const k of path) {
    if (cur === true) return true; // a sensitive/unknown marker over a whole block
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function shown(value: unknown, sensitive: unknown, unknown: unknown): string | null {
  if (sensitive === true) return '(sensitive)';
  if (unknown === true) return '(known after apply)';
  if (value === undefined || value === null) return null;
  if (typeof value === 'object') return Array.isArray(value) ? `[${value.length} items]` : '{…}';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

function ruleMatches(rule: PlanRiskRule, rc: PlanResourceChange, kind: ChangeKind, paths: string[]): boolean {
  if (kind === 'no-op' || kind === 'read') return false;
  if (rule.types && !rule.types.some((t) => globRe(t).test(rc.type))) return false;
  if (rule.addresses && !rule.addresses.some((t) => globRe(t).test(rc.address))) return false;
  if (kind !== 'unknown' && rule.actions && !(rule.actions as readonly string[]).includes(kind)) return false;
  if (rule.attributes && kind === 'update' && !rule.attributes.some((a) => paths.some((p) => pathMatches(a, p)))) return false;
  return true;
}

const dotted = (steps: unknown): string | null =>
  Array.isArray(steps) && steps.length ? steps.map((s) => String(s)).join('.') : null;

/** One resource change against the rules. */
export function classifyChange(rc: PlanResourceChange, rules: readonly PlanRiskRule[]): ClassifiedChange {
  const kind = changeKind(rc.change.actions);
  const paths = changedPaths(rc.change);
  const matched = rules.filter((r) => ruleMatches(r, rc, kind, paths));
  let risk: Risk = matched.reduce<Risk>((m, r) => (RISK_RANK[r.risk] > RISK_RANK[m] ? r.risk : m), 'low');
  const ruleList = matched
    .map((r) => ({ id: r.id, risk: r.risk, why: r.why }))
    .sort((x, y) => RISK_RANK[y.risk] - RISK_RANK[x.risk]);
  if (kind === 'unknown') {
    risk = 'high';
    ruleList.unshift({
      id: 'unknown-action',
      risk: 'high',
      why: `the plan's actions ${JSON.stringify(rc.change.actions)} are not ones this version knows: review the change by hand`,
    });
  }
  const watchedPatterns = [...new Set(matched.flatMap((r) => r.attributes ?? []))];
  const watchedPaths = paths.filter((p) => watchedPatterns.some((w) => pathMatches(w, p))).slice(0, 10);
  const watched = watchedPaths.map((p) => {
    const steps = p.split('.');
    return {
      path: p,
      before: shown(valueAt(rc.change.before, steps), valueAt(rc.change.before_sensitive, steps), undefined),
      after: shown(
        valueAt(rc.change.after, steps),
        valueAt(rc.change.after_sensitive, steps),
        valueAt(rc.change.after_unknown, steps),
      ),
    };
  });
  return {
    address: rc.address,
    type: rc.type,
    mode: rc.mode,
    kind,
    actions: [...rc.change.actions],
    risk,
    rules: ruleList,
    changedPaths: paths.slice(0, 20),
    changedPathCount: paths.length,
    replacePaths: (rc.change.replace_paths ?? []).map(dotted).filter((x): x is string => x !== null),
    actionReason: rc.action_reason ?? null,
    deposed: rc.deposed ?? null,
    watched,
  };
}

/** Every resource change of a plan, classified, highest risk first (then by address). */
export function classifyPlan(plan: PlanJson, rules: readonly PlanRiskRule[] = DEFAULT_PLAN_RISK_RULES): PlanClassification {
  const all = (plan.resource_changes ?? []).map((rc) => classifyChange(rc, rules));
  const changes = all
    .filter((c) => c.kind !== 'no-op' && c.kind !== 'read')
    .sort((a, b) => RISK_RANK[b.risk] - RISK_RANK[a.risk] || a.address.localeCompare(b.address));
  const byRisk: Record<Risk, number> = { high: 0, medium: 0, low: 0 };
  for (const c of changes) byRisk[c.risk]++;
  return {
    changes,
    noOp: all.filter((c) => c.kind === 'no-op').length,
    reads: all.filter((c) => c.kind === 'read').length,
    drift: plan.resource_drift?.length ?? 0,
    byRisk,
  };
}

export function riskAtLeast(risk: Risk, floor: Risk): boolean {
  return RISK_RANK[risk] >= RISK_RANK[floor];
}
