import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchors, brokenLinks, linkTargets, markdownFiles } from './docs-links.ts';

// The README is a short front page that links into docs/ and the folder READMEs: a link that names a
// moved, renamed or never-written file, or a heading that changed, must fail here, not on a reader.
const ROOT = fileURLToPath(new URL('..', import.meta.url));

// Links to documents another branch is writing, allowed until they land. An entry whose file exists
// fails below: remove it then, so the list never hides a broken link for long.
const PENDING: Record<string, string> = {};

const tmp = mkdtempSync(join(tmpdir(), 'verdict-docs-links-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('Markdown links', () => {
  const files = markdownFiles(ROOT);

  it('are checked in the README, docs/ and the folder READMEs', () => {
    expect(files).toEqual(expect.arrayContaining(['README.md', 'lib/load/README.md', 'opentofu/README.md']));
  });

  it('every relative link in every Markdown file names a file that exists, and a heading that exists', () => {
    const broken = files
      .flatMap((f) => brokenLinks(ROOT, f))
      .filter((b) => !(b.resolved in PENDING && b.why === `${b.resolved} does not exist`));
    expect(broken.map((b) => `${b.file}:${b.line}: ${b.target}: ${b.why}`)).toEqual([]);
  });

  it.each(Object.entries(PENDING))('pending target %s is still missing (when it lands, remove it from PENDING)', (path) => {
    expect(existsSync(join(ROOT, path)), `${path} exists now: remove it from PENDING in test/docs-links.test.ts`).toBe(false);
  });

  it('the README links every document in docs/', () => {
    const linked = new Set(linkTargets(readFileSync(join(ROOT, 'README.md'), 'utf8')).map((l) => l.target.split('#')[0]));
    const docs = files.filter((f) => f.startsWith('docs/') && f.endsWith('.md'));
    expect(docs.filter((d) => !linked.has(d))).toEqual([]);
  });
});

describe('the link check itself', () => {
  beforeAll(() => {
    mkdirSync(join(tmp, 'docs'));
    writeFileSync(join(tmp, 'docs', 'a.md'), '# Title\n\n## The gate (`verdict gate`)\n\n## Repeat\n\n## Repeat\n');
  });

  it('finds a missing file, a missing anchor and a link out of the repository; accepts the rest', () => {
    const text = [
      '[ok](docs/a.md) [ok](docs/a.md#the-gate-verdict-gate) [ok](docs/a.md#repeat-1) [ok](docs/) [ok](#here)',
      '## Here',
      '[gone](docs/b.md)',
      '[bad anchor](docs/a.md#no-such-heading)',
      '![image](docs/missing.png)',
      '[out](../elsewhere.md)',
      '[web](https://example.com/x.md) [mail](mailto:a@b.c)',
      '`[in code](docs/nothing.md)`',
      '```',
      '[in a fence](docs/nothing.md)',
      '```',
      '[ref]: docs/also-missing.md',
    ].join('\n');
    expect(brokenLinks(tmp, 'README.md', text).map((b) => [b.line, b.target])).toEqual([
      [3, 'docs/b.md'],
      [4, 'docs/a.md#no-such-heading'],
      [5, 'docs/missing.png'],
      [6, '../elsewhere.md'],
      [12, 'docs/also-missing.md'],
    ]);
  });

  it("makes GitHub's anchors: code and punctuation dropped, repeats numbered", () => {
    expect([...anchors('# A (`b | c`)\n## Setup, and tests\n## Setup, and tests\n```\n# not a heading\n```\n')]).toEqual([
      'a-b--c',
      'setup-and-tests',
      'setup-and-tests-1',
    ]);
  });
});
