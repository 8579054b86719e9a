import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePlanJson, PlanInputError } from '../iac/plan.ts';
import {
  changedPaths,
  changeKind,
  classifyPlan,
  DEFAULT_PLAN_RISK_RULES,
  effectiveRules,
  pathMatches,
  planRiskConfigSchema,
} from './plan-risk.ts';

const DATA = join(import.meta.dirname, 'testdata');
const text = (f: string) => readFileSync(join(DATA, f), 'utf8');
const plan = (f: string) => parsePlanJson(text(f), f);
const risks = (f: string, rules = effectiveRules()) =>
  classifyPlan(plan(f), rules).changes.map((c) => [c.address, c.kind, c.risk, c.rules.map((r) => r.id).join(',')]);

describe('plan JSON', () => {
  it('reads every fixture; refuses what is not a plan, naming why', () => {
    for (const f of ['sql-instance-replace.json', 'labels-only.json', 'empty.json', 'errored.json'])
      expect(plan(f).format_version).toBe('1.2');
    expect(() => parsePlanJson(text('format-2.json'), 'p.json')).toThrow(/format_version "2\.0" is not supported .*reads 1\.x/);
    expect(() => parsePlanJson('{"format_version": "1.2", "resource_changes": [', 'p.json')).toThrow(/p\.json is not JSON/);
    expect(() => parsePlanJson('', 'p.json')).toThrow(/p\.json is empty/);
    expect(() => parsePlanJson('[1]', 'p.json')).toThrow(/JSON but not a plan/);
    expect(() => parsePlanJson('{"resource_changes": []}', 'p.json')).toThrow(/no format_version/);
    expect(() => parsePlanJson('{"format_version": "1.0", "values": {}}', 'p.json')).toThrow(/a state, not of a plan/);
    expect(() =>
      parsePlanJson(
        '{"format_version": "1.2", "resource_changes": [{"address": "a.b", "type": "a", "change": {"actions": []}}]}',
        'p.json',
      ),
    ).toThrow(/resource_changes\.0\.change\.actions: change\.actions is empty/);
    expect(() => parsePlanJson('{"format_version": "one"}', 'p.json')).toThrow(PlanInputError);
    // Forward-compatible: unknown properties of a newer minor version are ignored.
    expect(parsePlanJson('{"format_version": "1.9", "new_thing": 1}', 'p.json').format_version).toBe('1.9');
  });
});

describe('classification (default rules)', () => {
  it('the change kinds of the format: both replace orders are a replace', () => {
    expect(changeKind(['delete', 'create'])).toBe('replace');
    expect(changeKind(['create', 'delete'])).toBe('replace');
    expect(changeKind(['forget', 'create'])).toBe('create');
    expect(changeKind(['no-op'])).toBe('no-op');
    expect(changeKind(['read'])).toBe('read');
    expect(changeKind(['teleport'])).toBe('unknown');
  });

  it.each([
    [
      'sql-instance-replace.json',
      'module.database.google_sql_database_instance.main',
      'replace',
      'cloud-sql-instance-replace,stateful-destroy',
    ],
    ['sql-instance-tier.json', 'google_sql_database_instance.main', 'update', 'cloud-sql-instance-restart'],
    ['gke-cluster-min-master-version.json', 'google_container_cluster.primary', 'update', 'gke-version'],
    ['gke-node-pool-version.json', 'google_container_node_pool.primary', 'update', 'gke-node-pool'],
    ['firewall-update.json', 'google_compute_firewall.allow_health_checks', 'update', 'network'],
    ['kms-key-destroy.json', 'google_kms_crypto_key.cloudsql', 'delete', 'kms-key-destroy'],
    ['service-account-key-delete.json', 'google_service_account_key.ci', 'delete', 'service-account-key-deletion'],
  ])('%s is high risk', (file, address, kind, rules) => {
    expect(risks(file)).toEqual([[address, kind, 'high', rules]]);
  });

  it('a secret and its version destroyed: both high', () => {
    expect(risks('secret-destroy.json')).toEqual(
      [
        ['google_secret_manager_secret_version.jwt', 'delete', 'high', 'secret-deletion'],
        ['google_secret_manager_secret.jwt', 'delete', 'high', 'secret-deletion'],
      ].sort((a, b) => a[0].localeCompare(b[0])),
    );
  });

  it('labels only: low, and the no-op and the data read are left out but counted', () => {
    const k = classifyPlan(plan('labels-only.json'));
    expect(k.changes.map((c) => [c.address, c.risk])).toEqual([
      ['google_container_cluster.primary', 'low'],
      ['google_sql_database_instance.main', 'low'],
      ['google_storage_bucket.reports', 'low'],
    ]);
    expect(k.changes.find((c) => c.type === 'google_sql_database_instance')!.changedPaths).toEqual([
      'settings.0.user_labels.cost-center',
    ]);
    expect([k.noOp, k.reads, k.byRisk]).toEqual([1, 1, { high: 0, medium: 0, low: 3 }]);
  });

  it('a stateful resource destroyed is medium; a create is low; an unknown action is high', () => {
    expect(risks('stateful-destroy.json')).toEqual([
      ['google_storage_bucket.reports', 'delete', 'medium', 'stateful-destroy'],
      ['google_monitoring_alert_policy.errors', 'create', 'low', ''],
    ]);
    expect(risks('unknown-action.json')).toEqual([
      ['google_storage_bucket.reports', 'unknown', 'high', 'unknown-action,stateful-destroy'],
    ]); // an unknown action matches every rule of its type
  });

  it('shows the watched values, never a sensitive one', () => {
    const tier = classifyPlan(plan('sql-instance-tier.json')).changes[0];
    expect(tier.watched).toEqual([
      { path: 'settings.0.database_flags.0.value', before: '"200"', after: '"400"' },
      { path: 'settings.0.tier', before: '"db-custom-2-7680"', after: '"db-custom-4-15360"' },
    ]);
    const gke = classifyPlan(plan('gke-cluster-min-master-version.json')).changes[0];
    expect(gke.watched).toEqual([{ path: 'min_master_version', before: '"1.33"', after: '"1.34"' }]);
    const sql = classifyPlan(plan('sql-instance-replace.json')).changes[0];
    expect(sql.replacePaths).toEqual(['name']);
    expect(sql.actionReason).toBe('replace_because_cannot_update');
    const all = JSON.stringify(
      ['sql-instance-replace.json', 'sql-instance-tier.json', 'secret-destroy.json', 'service-account-key-delete.json'].map((f) =>
        classifyPlan(plan(f)),
      ),
    );
    expect(all).not.toMatch(/must-never-leak|c2EtcHJpdmF0ZS1rZXktbXVzdC1uZXZlci1sZWFr/);
    // A rule that watches a sensitive attribute shows it as (sensitive).
    const rules = effectiveRules({
      rules: [{ id: 'pw', risk: 'high', types: ['google_sql_database_instance'], attributes: ['root_password'], why: 'x' }],
    });
    const pw = classifyPlan(plan('sql-instance-replace.json'), rules).changes[0];
    expect(JSON.stringify(pw)).not.toMatch(/must-never-leak/);
  });

  it('paths: before/after differences and what is known only after apply', () => {
    expect(
      changedPaths({ actions: ['update'], before: { a: 1, b: [1, 2] }, after: { a: 1, b: [1, 3] }, after_unknown: { c: true } }),
    ).toEqual(['b.1', 'c']);
    expect(changedPaths({ actions: ['update'], before: { tags: {} }, after: { tags: { x: '1' } } })).toEqual(['tags', 'tags.x']);
    expect(pathMatches('settings.*.tier', 'settings.0.tier')).toBe(true);
    expect(pathMatches('settings.*.tier', 'settings.0.user_labels.x')).toBe(false);
    expect(pathMatches('settings.*.tier', 'settings')).toBe(true); // the whole block
    expect(pathMatches('node_config', 'node_config.0.machine_type')).toBe(true);
  });
});

describe('rules are data', () => {
  it('the config adds rules, overrides a default by id, disables one', () => {
    const config = planRiskConfigSchema.parse({
      rules: [
        {
          id: 'monitoring',
          risk: 'high',
          types: ['google_monitoring_*'],
          actions: ['create', 'update'],
          why: 'alerting changes need a second look',
        },
        {
          id: 'stateful-destroy',
          risk: 'high',
          types: ['google_storage_bucket'],
          actions: ['delete'],
          why: 'buckets hold reports',
        },
      ],
    });
    expect(risks('stateful-destroy.json', effectiveRules(config))).toEqual([
      ['google_monitoring_alert_policy.errors', 'create', 'high', 'monitoring'],
      ['google_storage_bucket.reports', 'delete', 'high', 'stateful-destroy'],
    ]);
    const off = effectiveRules(planRiskConfigSchema.parse({ disable: ['network'] }));
    expect(risks('firewall-update.json', off)).toEqual([['google_compute_firewall.allow_health_checks', 'update', 'low', '']]);
    expect(effectiveRules().length).toBe(DEFAULT_PLAN_RISK_RULES.length);
  });

  it('a bad rule or an unknown default is refused, naming the field', () => {
    const issues = (v: unknown) =>
      planRiskConfigSchema.safeParse(v).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues({ disable: ['networks'] })).toEqual([
      expect.stringMatching(/^disable\.0: no default rule is called "networks"/),
    ]);
    expect(issues({ rules: [{ id: 'x', risk: 'severe', types: ['a'], why: 'y' }] })).toEqual([
      expect.stringMatching(/^rules\.0\.risk: /),
    ]);
    expect(issues({ rules: [{ id: 'x', risk: 'high', why: 'y' }] })).toEqual([
      'rules.0: a rule needs `types` or `addresses` (or both)',
    ]);
    expect(issues({ rules: [{ id: 'X Y', risk: 'high', types: ['a'], why: 'y' }] })).toEqual([
      expect.stringMatching(/^rules\.0\.id: lower-case/),
    ]);
    expect(issues({ rules: [{ id: 'x', risk: 'high', types: ['a'], actions: ['destroy'], why: 'y' }] })).toEqual([
      expect.stringMatching(/^rules\.0\.actions\.0: /),
    ]);
    expect(issues({ failOn: 'low' })).toEqual([expect.stringMatching(/^failOn: /)]);
  });
});
