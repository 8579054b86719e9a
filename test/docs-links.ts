/**
 * The repository's Markdown files and their relative links: every `[text](target)`, `![alt](target)`
 * and `[id]: target` outside code must name a file or folder that exists, and a `#fragment` must name
 * a heading of the file it points into (GitHub's anchors). Used by test/docs-links.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

export interface BrokenLink {
  /** The Markdown file, relative to the repository root. */
  readonly file: string;
  readonly line: number;
  readonly target: string;
  /** The path the target resolves to, relative to the repository root. */
  readonly resolved: string;
  readonly why: string;
}

/** Every tracked Markdown file, and those not yet added that git does not ignore (a new doc counts before its commit). */
export function markdownFiles(root: string): string[] {
  const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', '*.md'], {
    cwd: root,
    encoding: 'utf8',
  });
  return [...new Set(out.split('\0').filter(Boolean))].filter((f) => existsSync(join(root, f))).sort();
}

/** The text with fenced code blocks and inline code spans blanked (line breaks kept, so line numbers hold). */
export function withoutCode(text: string): string {
  const lines = text.split('\n');
  let fence: string | null = null;
  const out = lines.map((line) => {
    const m = /^[ \t]{0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length) fence = null;
      return '';
    }
    if (m) {
      fence = m[1];
      return '';
    }
    return line.replace(/(`+)[\s\S]*?\1/g, (s) => ' '.repeat(s.length));
  });
  return out.join('\n');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped (not `-` or `_`), spaces to `-`. */
export function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown text's ATX headings, with GitHub's `-1`, `-2` for repeats. */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of withoutFences(text).split('\n')) {
    const m = /^[ \t]{0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Fenced blocks blanked, inline code kept (a heading's code span is part of its anchor). */
function withoutFences(text: string): string {
  let fence: string | null = null;
  return text
    .split('\n')
    .map((line) => {
      const m = /^[ \t]{0,3}(`{3,}|~{3,})/.exec(line);
      if (fence) {
        if (m && m[1][0] === fence[0] && m[1].length >= fence.length) fence = null;
        return '';
      }
      if (m) {
        fence = m[1];
        return '';
      }
      return line;
    })
    .join('\n');
}

const INLINE = /!?\[[^\]\n]*\]\(\s*<?([^)\s>]*)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g;
const DEFINITION = /^[ \t]{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/gm;

/** The relative link targets of a Markdown text (outside code), with their line numbers. */
export function linkTargets(text: string): Array<{ line: number; target: string }> {
  const code = withoutCode(text);
  const found: Array<{ index: number; target: string }> = [];
  for (const m of code.matchAll(INLINE)) found.push({ index: m.index, target: m[1] });
  for (const m of code.matchAll(DEFINITION)) found.push({ index: m.index, target: m[1] });
  return found
    .filter(({ target }) => target !== '' && !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('//'))
    .map(({ index, target }) => ({ line: code.slice(0, index).split('\n').length, target }))
    .sort((a, b) => a.line - b.line);
}

/** The broken relative links of one Markdown file (`file` relative to `root`). */
export function brokenLinks(root: string, file: string, text = readFileSync(join(root, file), 'utf8')): BrokenLink[] {
  const broken: BrokenLink[] = [];
  for (const { line, target } of linkTargets(text)) {
    const hash = target.indexOf('#');
    const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
    const fragment = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
    const resolved =
      pathPart === '' ? file : normalize(pathPart.startsWith('/') ? pathPart.slice(1) : join(dirname(file), pathPart));
    if (pathPart === '') {
      if (fragment && !anchors(text).has(fragment))
        broken.push({ file, line, target, resolved, why: `no heading with the anchor #${fragment}` });
      continue;
    }
    const full = join(root, resolved);
    if (relative(root, full).startsWith('..')) {
      broken.push({ file, line, target, resolved, why: 'points outside the repository' });
      continue;
    }
    if (!existsSync(full)) {
      broken.push({ file, line, target, resolved, why: `${resolved} does not exist` });
      continue;
    }
    if (fragment === null || fragment === '' || !resolved.endsWith('.md') || statSync(full).isDirectory()) continue;
    if (!anchors(readFileSync(full, 'utf8')).has(fragment))
      broken.push({ file, line, target, resolved, why: `${resolved} has no heading with the anchor #${fragment}` });
  }
  return broken;
}
