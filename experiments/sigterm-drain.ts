/**
 * sigterm-drain: the harness proving it can see. The same pod kill twice under the same load: once
 * with the app's naive shutdown (no preStop delay, exit at once on SIGTERM) as a control, once with
 * the release as shipped. PASS only if the control shows failures attributed to terminating pods
 * *and* the shipped release shows none. A control without failures is INCONCLUSIVE: the harness
 * could not demonstrate that it sees this failure mode here (too little load, too fast a network),
 * so the clean run proves nothing.
 */
import type { FailureCause } from '../lib/evidence/causes.ts';
import type { Gate } from '../reports/gates.ts';
import { defineExperiment } from './experiment.ts';
import { faultsOf, loadGates } from './common.ts';
import { killPodsOneByOne, killsGate, underLoad, type Kill } from './pod-kill.ts';

const DRAIN_CAUSES: FailureCause[] = ['terminating-pod', 'endpoint-not-yet-removed', 'reset-during-drain'];

export interface SigtermDrainData {
  control: { replicas: number; kills: Kill[] } | null;
  shipped: { replicas: number; kills: Kill[] };
}

export const sigtermDrain = defineExperiment<SigtermDrainData>()({
  name: 'sigterm-drain',
  description:
    'kills pods under load twice: with a naive shutdown as a control (must show drain failures) and as shipped (must show none)',
  needs: ['images'],
  async setup() {},
  async act(ctx) {
    const { app, options, target } = ctx;
    let control: SigtermDrainData['control'] = null;
    if (app.naiveShutdown) {
      ctx.say(`control: ${options.to} with ${app.naiveShutdown.name} (${app.naiveShutdown.what})`);
      const r = await ctx.deploy(app.release(options.to, target.platform, [app.naiveShutdown]));
      if (!r.ok) throw new Error(`the control release did not deploy: ${r.error}`);
      control = await underLoad(ctx, 'naive', () => killPodsOneByOne(ctx), { control: true });
    }
    ctx.say(`shipped: ${options.to}${options.faults.length ? ` with ${options.faults.map((f) => f.name).join(', ')}` : ''}`);
    const r = await ctx.deploy(app.release(options.to, target.platform, faultsOf(options.faults)));
    if (!r.ok) throw new Error(`the release under test did not deploy: ${r.error}`);
    const shipped = await underLoad(ctx, 'shipped', () => killPodsOneByOne(ctx));
    return { control, shipped };
  },
  judge(e, { config }) {
    const gates: Gate[] = [];
    const naive = e.loads.find((l) => l.label === 'naive');
    const shipped = e.loads.find((l) => l.label === 'shipped');
    if (!e.data.control || !naive) {
      gates.push({
        name: 'control shows drain failures',
        verdict: 'INCONCLUSIVE',
        evidence: 'the app profile names no naive-shutdown fault, so the harness cannot show it would see drain failures',
      });
    } else {
      const seen = naive.joined.failures.filter((f) => DRAIN_CAUSES.includes(f.cause));
      const byCause = Object.fromEntries(DRAIN_CAUSES.map((c) => [c, seen.filter((f) => f.cause === c).length]));
      gates.push(
        seen.length > 0
          ? {
              name: 'control shows drain failures',
              verdict: 'PASS',
              observed: { ...byCause, control_failed: naive.joined.failed, control_total: naive.joined.total },
              evidence: `the naive control dropped ${seen.length} of ${naive.joined.total} requests on terminating pods (${DRAIN_CAUSES.map((c) => `${byCause[c]} ${c}`).join(', ')}): the harness sees this failure mode`,
            }
          : {
              name: 'control shows drain failures',
              verdict: 'INCONCLUSIVE',
              observed: { ...byCause, control_failed: naive.joined.failed, control_total: naive.joined.total },
              evidence: `the naive control lost no request to a terminating pod (${naive.joined.failed} failures of ${naive.joined.total}, none attributed to termination): the harness could not demonstrate that it sees drain failures, so a clean shipped run proves nothing`,
            },
      );
      gates.push(killsGate(e.data.control.kills, e.data.control.replicas));
    }
    gates.push(...loadGates(shipped, config, { prefix: 'shipped' }));
    gates.push(killsGate(e.data.shipped.kills, e.data.shipped.replicas));
    return gates.map((g, i) => (gates.findIndex((x) => x.name === g.name) === i ? g : { ...g, name: `${g.name} (shipped)` }));
  },
});
