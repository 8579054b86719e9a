import type { Command } from 'commander';
import { clusterCommand } from './cluster.ts';
import { deployCommand } from './deploy.ts';
import { imageCommand } from './image.ts';
import { tokenCommand } from './token.ts';
import { verifyLocalCommand } from './verify-local.ts';
import { experimentCommand } from './experiment.ts';
import { rehearseCommand } from './rehearse.ts';
import { loadCommand } from './load.ts';
import { reportCommand } from './report.ts';
import { trendCommand } from './trend.ts';
import { historyCommand, pauseCommand, resumeCommand, rollbackCommand } from './rollout.ts';
import { smokeCommand } from './smoke.ts';
import { gateCommand } from './gate.ts';
import { probesCommand } from './probes.ts';
import { planRiskCommand } from './plan-risk.ts';

/** Every `verdict` subcommand, in the order `--help` lists them. */
export const commands: Array<() => Command> = [
  verifyLocalCommand,
  experimentCommand,
  rehearseCommand,
  smokeCommand,
  gateCommand,
  probesCommand,
  planRiskCommand,
  clusterCommand,
  imageCommand,
  deployCommand,
  rollbackCommand,
  historyCommand,
  pauseCommand,
  resumeCommand,
  tokenCommand,
  loadCommand,
  reportCommand,
  trendCommand,
];
