import type { Command } from 'commander';
import { tokenCommand } from './token.ts';
import { verifyLocalCommand } from './verify-local.ts';
import { loadCommand } from './load.ts';

/** Every `verdict` subcommand, in the order `--help` lists them. */
export const commands: Array<() => Command> = [
  verifyLocalCommand,
  tokenCommand,
  loadCommand,
];
