import { embeddedStrategy } from './embedded/embedded-cluster.ts';
import { existingStrategy } from './existing/existing-target.ts';
import { kindStrategy } from './kind/kind-cluster.ts';
import type { TargetStrategy } from './target.ts';

/** Every target strategy, in the order `--target auto` tries them: made here without Docker, kind, then a named context. */
export const TARGET_STRATEGIES: TargetStrategy[] = [embeddedStrategy, kindStrategy, existingStrategy];
