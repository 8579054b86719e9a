/**
 * One sanitiser for every output channel: text the harness does not control (what a service under
 * test answered, a cluster's event messages, error messages that quote either) made safe to print
 * as one field of a line on a terminal, in a CI log, in Markdown, JUnit or a progress line.
 *
 * - Control characters are shown, not obeyed: C0 (ESC, BEL, CR, LF, backspace, ...), DEL and C1
 *   (CSI U+009B, OSC U+009D, NEL U+0085, ...) become visible escapes (`\x1b`, `\r`, `\n`), so a
 *   service cannot colour, clear or retitle the terminal, write the clipboard (OSC 52), move the
 *   cursor or start a new line with a forged `PASS`. A tab becomes a space.
 * - Line and paragraph separators (U+2028, U+2029) and the bidirectional controls that make text
 *   read differently from what it is (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) are
 *   escaped as `\u2028`-style text.
 * - A field that begins (after blanks) with `::` or `##[` is neutralised: GitHub Actions reads such
 *   a line as a workflow command (`::error::`, `::add-mask::`, `::stop-commands::`; `##[` is the
 *   older syntax it still reads), and a field can end up at the start of a line. The first
 *   character is escaped (`\x3a:error::`), so the line reads as what it was and commands nothing.
 *
 * Lone surrogates become U+FFFD. The result never contains a character this function would change
 * again: applying it twice is applying it once.
 */

const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r' };

function escape(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `s` made safe to print as (part of) one line of any output; see the module comment. */
export function safeText(s: string): string {
  const t = String(s).toWellFormed().replace(/\t/g, ' ').replace(UNSAFE, escape);
  return t.replace(/^(\s*)(::|##\[)/, (_, blanks: string, cmd: string) => `${blanks}${cmd === '::' ? '\\x3a:' : '\\x23#['}`);
}

/** A deep copy of `value` with every string (keys too) passed through {@link safeText}. */
export function safeDeep<T>(value: T): T {
  if (typeof value === 'string') return safeText(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => safeDeep(v)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [safeText(k), safeDeep(v)])) as T;
  }
  return value;
}
