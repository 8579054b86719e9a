import { describe, expect, it } from 'vitest';
import type { k8s } from './client.ts';
import { equalIgnoreHash, planUndo, revisionHistory, RolloutRefusedError, type UndoPlan } from './rollout-history.ts';

// kubectl's undo cases (polymorphichelpers/rollback.go) on plain objects: no cluster needed.

const UID = 'd-uid';
const template = (image: string, hash?: string): k8s.V1PodTemplateSpec => ({
  metadata: {
    labels: { app: 'api', ...(hash ? { 'pod-template-hash': hash } : {}) },
    annotations: { 'kubectl.kubernetes.io/restartedAt': 'x' },
  },
  spec: { containers: [{ name: 'api', image, args: [], env: [{ name: 'A', value: '1' }] }] },
});
const rs = (
  revision: number | string | null,
  image: string,
  o: { owner?: string; changeCause?: string; created?: string } = {},
): k8s.V1ReplicaSet => ({
  metadata: {
    name: `api-${image.replace(/\W/g, '')}`,
    namespace: 'coditect',
    creationTimestamp: new Date(o.created ?? '2026-03-03T14:00:00Z'),
    annotations: {
      ...(revision === null ? {} : { 'deployment.kubernetes.io/revision': String(revision) }),
      'deployment.kubernetes.io/desired-replicas': '3',
      'deployment.kubernetes.io/max-replicas': '4',
      ...(o.changeCause ? { 'kubernetes.io/change-cause': o.changeCause } : {}),
    },
    labels: { app: 'api', 'pod-template-hash': `h${image}` },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'api', uid: o.owner ?? UID, controller: true }],
  },
  spec: { selector: { matchLabels: { app: 'api' } }, template: template(image, `h${image}`) },
  status: { replicas: 0 },
});
const deployment = (image: string, o: { paused?: boolean; revision?: number } = {}): k8s.V1Deployment => ({
  metadata: {
    name: 'api',
    namespace: 'coditect',
    uid: UID,
    annotations: {
      'deployment.kubernetes.io/revision': String(o.revision ?? 3),
      'kubectl.kubernetes.io/last-applied-configuration': '{"applied":true}',
      'kubernetes.io/change-cause': 'deploy v3',
    },
  },
  spec: { selector: { matchLabels: { app: 'api' } }, template: template(image), paused: o.paused },
});
const three = () => [
  rs(1, 'api:v1', { changeCause: 'deploy v1' }),
  rs(2, 'api:v2', { changeCause: 'deploy v2' }),
  rs(3, 'api:v3', { changeCause: 'deploy v3' }),
];
const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (e instanceof RolloutRefusedError) return { reason: e.reason, message: e.message };
    throw e;
  }
  return undefined;
};
const image = (p: UndoPlan) =>
  p.action === 'rollback' ? (p.patch[0].value as k8s.V1PodTemplateSpec).spec!.containers[0].image : null;

describe('planUndo: kubectl rollout undo', () => {
  it('no revision given: the previous revision, patched back as kubectl patches it', () => {
    const p = planUndo(deployment('api:v3'), three());
    expect(p).toMatchObject({
      action: 'rollback',
      revision: 2,
      replicaSet: 'api-apiv2',
      message: 'rolled back to revision 2 (replicaset api-apiv2)',
    });
    if (p.action !== 'rollback') throw new Error('expected a rollback');
    expect(p.patch.map((o) => [o.op, o.path])).toEqual([
      ['replace', '/spec/template'],
      ['replace', '/metadata/annotations'],
    ]);
    // The template without the ReplicaSet's pod-template-hash label; everything else as the ReplicaSet has it.
    expect(p.patch[0].value).toEqual({
      ...template('api:v2'),
      metadata: { ...template('api:v2').metadata, labels: { app: 'api' } },
    });
    // The Deployment keeps its own last-applied-configuration and revision; the rest comes from the ReplicaSet.
    expect(p.patch[1].value).toEqual({
      'deployment.kubernetes.io/revision': '3',
      'kubectl.kubernetes.io/last-applied-configuration': '{"applied":true}',
      'kubernetes.io/change-cause': 'deploy v2',
    });
  });

  it('the order of the ReplicaSets does not matter; ReplicaSets of another owner or without a revision are not history', () => {
    const sets = [
      rs(3, 'api:v3'),
      rs(7, 'api:other', { owner: 'someone-else' }),
      rs(null, 'api:norev'),
      rs('x1', 'api:bad'),
      rs(1, 'api:v1'),
      rs(2, 'api:v2'),
    ];
    expect(planUndo(deployment('api:v3'), sets)).toMatchObject({ action: 'rollback', revision: 2 });
  });

  it('a given revision', () => {
    const p = planUndo(deployment('api:v3'), three(), 1);
    expect(p).toMatchObject({ action: 'rollback', revision: 1 });
    expect(image(p)).toBe('api:v1');
  });

  it('a template identical to the current one (pod-template-hash aside): skipped, nothing to patch', () => {
    expect(planUndo(deployment('api:v3'), three(), 3)).toEqual({
      action: 'skip',
      revision: 3,
      replicaSet: 'api-apiv3',
      message: 'skipped rollback (current template already matches revision 3)',
    });
    // After an undo to v2 the controller gives v2's ReplicaSet revision 4; undoing again goes to 3, the previous one.
    const afterUndo = [rs(1, 'api:v1'), rs(4, 'api:v2'), rs(3, 'api:v3')];
    expect(planUndo(deployment('api:v2', { revision: 4 }), afterUndo)).toMatchObject({ action: 'rollback', revision: 3 });
    // Two ReplicaSets with one template (an edit reverted by hand): the previous one matches, so undo is a no-op.
    expect(
      planUndo(deployment('api:v2'), [
        rs(1, 'api:v2'),
        { ...rs(2, 'api:v2'), metadata: { ...rs(2, 'api:v2').metadata, name: 'api-again' } },
      ]),
    ).toMatchObject({ action: 'skip', revision: 1 });
  });

  it("a paused Deployment is refused with kubectl's message and the fix", () => {
    expect(refusal(() => planUndo(deployment('api:v3', { paused: true }), three()))).toEqual({
      reason: 'paused',
      message:
        'you cannot rollback a paused deployment; resume it first with `verdict resume --deployment coditect/api` (kubectl rollout resume deployment/api) and try again',
    });
  });

  it("a missing revision is an error, checked before paused (kubectl's order)", () => {
    expect(refusal(() => planUndo(deployment('api:v3'), three(), 9))).toMatchObject({
      reason: 'revision-not-found',
      message: expect.stringMatching(
        /^unable to find specified revision 9 in history of deployment coditect\/api \(see the revisions with `verdict history --deployment coditect\/api`\)$/,
      ),
    });
    expect(refusal(() => planUndo(deployment('api:v3', { paused: true }), three(), 9))?.reason).toBe('revision-not-found');
    expect(refusal(() => planUndo(deployment('api:v3'), three(), -1))?.reason).toBe('revision-not-found');
  });

  it('only one revision: no history to go back to', () => {
    expect(refusal(() => planUndo(deployment('api:v1', { revision: 1 }), [rs(1, 'api:v1')]))).toMatchObject({
      reason: 'no-history',
      message: expect.stringMatching(/^no rollout history found for deployment "api"/),
    });
  });
});

describe('revisionHistory: kubectl rollout history', () => {
  it('one entry per revision, oldest first, with change-cause, images and the current one marked', () => {
    const h = revisionHistory(deployment('api:v3'), [
      rs(3, 'api:v3', { changeCause: 'deploy v3' }),
      rs(1, 'api:v1'),
      rs(2, 'api:v2'),
      rs(5, 'x', { owner: 'other' }),
    ]);
    expect(h.map((r) => [r.revision, r.changeCause, r.images, r.current, r.templateHash])).toEqual([
      [1, null, ['api=api:v1'], false, 'hapi:v1'],
      [2, null, ['api=api:v2'], false, 'hapi:v2'],
      [3, 'deploy v3', ['api=api:v3'], true, 'hapi:v3'],
    ]);
    expect(h[0].createdAt).toBe('2026-03-03T14:00:00.000Z');
  });
});

describe('equalIgnoreHash', () => {
  it('ignores pod-template-hash and treats empty and absent alike; any real difference counts', () => {
    expect(equalIgnoreHash(template('a', 'h1'), template('a'))).toBe(true);
    const noArgs = template('a');
    delete noArgs.spec!.containers[0].args;
    expect(equalIgnoreHash(noArgs, template('a', 'h2'))).toBe(true);
    expect(equalIgnoreHash(template('a'), template('b'))).toBe(false);
    const env = template('a');
    env.spec!.containers[0].env![0].value = '2';
    expect(equalIgnoreHash(env, template('a'))).toBe(false);
  });
});
