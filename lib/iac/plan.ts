/**
 * OpenTofu plans as JSON: `tofu show -json <planfile>` (OpenTofu's "JSON Output Format",
 * https://opentofu.org/docs/internals/json-format/; the Go types are
 * internal/command/jsonplan/plan.go and resource.go of github.com/opentofu/opentofu, whose
 * `format_version` is "1.2" in v1.12). Reads a JSON file, stdin, or a binary plan file (a zip
 * archive) through `tofu show -json`, and checks the shape before anything judges it.
 *
 * The format's promise: a new minor version only adds properties (ignored here), a new major version
 * breaks consumers, so an unknown major is refused ("Reject any input which reports an unsupported
 * major version", the same page).
 */
import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { runCommand } from '../proc/run.ts';

/** The plan format's major version this code reads. */
export const PLAN_FORMAT_MAJOR = 1;
/** The OpenTofu version scripts/tofu.sh builds (keep the two equal). */
export const TOFU_VERSION = 'v1.12.6';

const changeSchema = z.looseObject({
  actions: z.array(z.string()).min(1, 'change.actions is empty'),
  before: z.unknown().optional(),
  after: z.unknown().optional(),
  after_unknown: z.unknown().optional(),
  before_sensitive: z.unknown().optional(),
  after_sensitive: z.unknown().optional(),
  replace_paths: z.array(z.array(z.union([z.string(), z.number()]))).optional(),
});

const resourceChangeSchema = z.looseObject({
  address: z.string().min(1),
  mode: z.string().default('managed'),
  type: z.string().min(1),
  name: z.string().optional(),
  provider_name: z.string().optional(),
  deposed: z.string().optional(),
  action_reason: z.string().optional(),
  change: changeSchema,
});

export const planJsonSchema = z.looseObject({
  format_version: z.string().regex(/^\d+\.\d+$/, 'format_version must look like "1.2"'),
  terraform_version: z.string().optional(),
  resource_changes: z.array(resourceChangeSchema).optional(),
  resource_drift: z.array(z.unknown()).optional(),
  errored: z.boolean().optional(),
  timestamp: z.string().optional(),
});

export type PlanJson = z.infer<typeof planJsonSchema>;
export type PlanResourceChange = z.infer<typeof resourceChangeSchema>;

/** The input is not a plan this code can read (not JSON, not a plan, a format it does not know): the caller's mistake. */
export class PlanInputError extends Error {
  override name = 'PlanInputError';
}

/** tofu itself failed on a binary plan (it ran and said no). */
export class TofuError extends Error {
  override name = 'TofuError';
}

const HOW =
  'Give the JSON of `tofu show -json tfplan` (a file, or - for stdin), or the binary plan written by `tofu plan -out=tfplan`.';

/** Parses and checks plan JSON text. Never throws anything but PlanInputError for bad input. */
export function parsePlanJson(text: string, source: string): PlanJson {
  const trimmed = text.trim();
  if (!trimmed) throw new PlanInputError(`${source} is empty. ${HOW}`);
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (err) {
    throw new PlanInputError(`${source} is not JSON (${(err as Error).message}). ${HOW}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new PlanInputError(`${source} is JSON but not a plan (a plan is an object with format_version). ${HOW}`);
  const v = value as Record<string, unknown>;
  if (!('format_version' in v)) throw new PlanInputError(`${source} has no format_version: it is not the JSON of a plan. ${HOW}`);
  const major = typeof v.format_version === 'string' ? Number(v.format_version.split('.')[0]) : NaN;
  if (major !== PLAN_FORMAT_MAJOR)
    throw new PlanInputError(
      `${source}: plan format_version ${JSON.stringify(v.format_version)} is not supported (this version of verdict reads ${PLAN_FORMAT_MAJOR}.x, as OpenTofu 1.x writes; a new major version changes the format incompatibly)`,
    );
  if ('values' in v && !('resource_changes' in v) && !('planned_values' in v) && !('prior_state' in v))
    throw new PlanInputError(`${source} is the JSON of a state, not of a plan (\`tofu show -json\` of a state file). ${HOW}`);
  const parsed = planJsonSchema.safeParse(v);
  if (!parsed.success) {
    const lines = parsed.error.issues.slice(0, 8).map((i) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new PlanInputError(`${source} is not a plan this version can read:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** A binary plan from `tofu plan -out` is a zip archive. */
async function isZip(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    return bytesRead === 4 && buf.readUInt32LE(0) === 0x04034b50;
  } finally {
    await fh.close();
  }
}

/** Where `tofu` is: --tofu, $VERDICT_TOFU, scripts/tofu.sh's cache, else `tofu` on PATH (null: not found). */
export function findTofu(explicit?: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (explicit) return explicit;
  if (env.VERDICT_TOFU) return env.VERDICT_TOFU;
  const cached = join(env.VERDICT_CACHE ?? join(homedir(), '.cache', 'verdict'), `tofu-${TOFU_VERSION}`, 'tofu');
  if (existsSync(cached)) return cached;
  for (const dir of (env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'tofu'))) return join(dir, 'tofu');
  return null;
}

export interface ReadPlanOptions {
  /** The tofu binary for a binary plan (default: findTofu()). */
  tofu?: string;
  /** The initialised configuration directory for `tofu show` (default: the plan file's directory). */
  chdir?: string;
  /** Stdin's text, when the path is `-`. */
  stdin?: () => Promise<string>;
  env?: NodeJS.ProcessEnv;
}

export interface ReadPlan {
  plan: PlanJson;
  /** How it was read: `json` (a file or stdin) or `tofu show -json` (with the binary). */
  via: string;
  source: string;
}

/** Reads a plan: JSON from a file or stdin, or a binary plan through `tofu show -json`. */
export async function readPlan(path: string, o: ReadPlanOptions = {}): Promise<ReadPlan> {
  if (path === '-') {
    const text = await (o.stdin ?? readStdin)();
    return { plan: parsePlanJson(text, 'stdin'), via: 'json', source: 'stdin' };
  }
  const abs = resolve(path);
  if (!existsSync(abs)) throw new PlanInputError(`${path} does not exist. ${HOW}`);
  if (await isZip(abs)) {
    const tofu = findTofu(o.tofu, o.env);
    if (!tofu)
      throw new PlanInputError(
        `${path} is a binary plan, and reading it needs tofu: none was found (--tofu, $VERDICT_TOFU, PATH). Build it with scripts/tofu.sh, or give the JSON of \`tofu show -json ${path}\` instead.`,
      );
    const cwd = resolve(o.chdir ?? dirname(abs));
    let stdout: string;
    try {
      ({ stdout } = await runCommand(tofu, ['show', '-json', '-no-color', abs], {
        cwd,
        env: { ...(o.env ?? process.env), TF_IN_AUTOMATION: '1' },
        timeoutMs: 120_000,
      }));
    } catch (err) {
      throw new TofuError(
        `tofu could not read the plan ${path} (it runs in ${cwd}, which must be the configuration the plan was made from, initialised with tofu init; --chdir sets it): ${(err as Error).message}`,
      );
    }
    return { plan: parsePlanJson(stdout, `tofu show -json ${path}`), via: `tofu show -json (${tofu})`, source: path };
  }
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw new PlanInputError(`${path}: cannot read it: ${(err as Error).message}`);
  }
  return { plan: parsePlanJson(text, path), via: 'json', source: path };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
