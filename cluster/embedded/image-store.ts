import { chmod, cp, link, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Images of the embedded cluster: `name:tag` → a directory holding the app and an `image.json`
 * (its default command, working directory and env), the embedded twin of `docker build` +
 * `kind load docker-image`. `node` in a command resolves to the cluster's Node 24 runtime.
 * Everything is world-readable: pods run as non-root users (runAsUser).
 */
export interface ImageConfig {
  name: string;
  tag: string;
  /** Default command (the Dockerfile's CMD): `["node", "server.mjs"]`. */
  cmd: string[];
  /** Extra environment (the Dockerfile's ENV). */
  env?: Record<string, string>;
  builtAt: string;
}

export interface ResolvedImage {
  ref: string;
  dir: string;
  config: ImageConfig;
  /** sha256-like id: the image directory's build time, stable for one build. */
  id: string;
}

const REF = /^([a-z0-9][a-z0-9._/-]{0,127}):([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/;

export function parseImageRef(ref: string): { name: string; tag: string } {
  // Registry prefixes are kept as part of the name; a missing tag means `latest`, as Docker does.
  const withTag = /:[^/]+$/.test(ref) ? ref : `${ref}:latest`;
  const m = REF.exec(withTag);
  if (!m) throw new Error(`invalid image reference "${ref}": use name:tag, e.g. license-api:v1`);
  return { name: m[1], tag: m[2] };
}

export class ImageStore {
  readonly root: string;
  readonly runtimeDir: string;
  constructor(stateDir: string) {
    this.root = join(stateDir, 'images');
    this.runtimeDir = join(stateDir, 'runtime');
  }

  /** Where `name:tag` lives (whether or not it exists yet). */
  dirOf(ref: string): string {
    const { name, tag } = parseImageRef(ref);
    return join(this.root, name.replaceAll('/', '_'), tag);
  }

  /**
   * Adds an image by calling `fill(dir)` to write its files, then records its config.
   * Replaces an existing image of the same reference.
   */
  async add(
    ref: string,
    cmd: string[],
    fill: (dir: string) => Promise<void>,
    env: Record<string, string> = {},
  ): Promise<ResolvedImage> {
    const { name, tag } = parseImageRef(ref);
    const dir = this.dirOf(ref);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await fill(dir);
    const config: ImageConfig = { name, tag, cmd, env, builtAt: new Date().toISOString() };
    await writeFile(join(dir, 'image.json'), JSON.stringify(config, null, 2) + '\n');
    await makeWorldReadable(this.root);
    return await this.resolve(ref);
  }

  /** Adds an image made of the given files (tests' images: a script and a command). */
  async addFiles(
    ref: string,
    cmd: string[],
    files: Record<string, string>,
    env?: Record<string, string>,
  ): Promise<ResolvedImage> {
    return await this.add(
      ref,
      cmd,
      async (dir) => {
        for (const [path, content] of Object.entries(files)) {
          await mkdir(dirname(join(dir, path)), { recursive: true });
          await writeFile(join(dir, path), content);
        }
      },
      env,
    );
  }

  async resolve(ref: string): Promise<ResolvedImage> {
    const dir = this.dirOf(ref);
    let raw: string;
    try {
      raw = await readFile(join(dir, 'image.json'), 'utf8');
    } catch {
      throw new Error(
        `image ${ref} is not in the embedded image store: build it with \`verdict image build --tag ${parseImageRef(ref).tag}\``,
      );
    }
    const config = JSON.parse(raw) as ImageConfig;
    return { ref, dir, config, id: `verdict-image://${config.name}:${config.tag}@${config.builtAt}` };
  }

  async list(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await readdir(this.root).catch(() => [] as string[])) {
      for (const tag of await readdir(join(this.root, name)).catch(() => [] as string[]))
        out.push(`${name.replaceAll('_', '/')}:${tag}`);
    }
    return out.sort();
  }

  /**
   * The Node binary pods run, readable and executable by any user: a hard link to (or a copy of)
   * the harness's own Node 24, since the harness's may sit under root's 0700 home.
   */
  async runtimeNode(): Promise<string> {
    const target = join(this.runtimeDir, 'node');
    const have = await stat(target).catch(() => undefined);
    const src = await stat(process.execPath);
    if (!have || have.size !== src.size) {
      await mkdir(this.runtimeDir, { recursive: true });
      await rm(target, { force: true });
      await link(process.execPath, target).catch(async () => {
        await cp(process.execPath, target);
      });
      await chmod(target, 0o755);
    }
    await makeWorldReadable(this.runtimeDir);
    return target;
  }
}

/** Makes everything in `dir` readable by all users, and checks that every directory above it can be entered. */
async function makeWorldReadable(dir: string): Promise<void> {
  const walk = async (p: string) => {
    const s = await stat(p);
    await chmod(p, s.isDirectory() || s.mode & 0o111 ? (s.mode | 0o755) & 0o7777 : (s.mode | 0o644) & 0o7777);
    if (s.isDirectory()) for (const e of await readdir(p)) await walk(join(p, e));
  };
  await walk(dir);
  for (let p = dirname(dir); p !== dirname(p); p = dirname(p)) {
    const s = await stat(p);
    if ((s.mode & 0o001) === 0) {
      throw new Error(
        `${dir} sits under ${p}, which other users cannot enter; pods run as non-root users, so put the cluster's state directory elsewhere (the default is /var/lib/verdict)`,
      );
    }
  }
}
