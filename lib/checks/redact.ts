/**
 * Secret redaction for everything the harness prints or writes: a bearer token must not reach a
 * report, a log line or a terminal, not even in part.
 *
 * The rule, for each secret:
 * - shorter than {@link MIN_SECRET_LENGTH} (8) characters: not redacted at all. So short a value
 *   cannot be told from ordinary text (`TEST_TOKEN=x` would turn "mid-exchange" into
 *   "mid-e[REDACTED]change" and even rename fields of the run record), and it is no real bearer
 *   token either: {@link shortSecretWarning} says so, and the commands print it.
 * - 8 characters or more: every occurrence of the whole value.
 * - {@link SECRET_RUN} (12) characters or more: also every run of 12 or more consecutive
 *   characters of it, wherever it stands (a token cut by a snippet, reflected in part by a server,
 *   split across a line). 12 base64url characters are 72 bits: a random 12-character string equals
 *   one of a JWT's ~150 windows with odds of about 3·10^-20, so nothing but the token is blanked,
 *   while what can survive is a fragment of at most 11 characters (66 bits), which cannot be
 *   presented as the token and is a small part of its 256-bit signature.
 *
 * Redact before cutting: a cut can leave a piece of a token shorter than any pattern that found
 * the whole. The HTTP client redacts each body as it reads it (see `HttpClientOptions.redact`),
 * and the suite runner again everything it returns.
 */

export const REDACTED = '[REDACTED]';
/** Secrets shorter than this are not redacted (and are warned about). */
export const MIN_SECRET_LENGTH = 8;
/** Any run of this many characters of a secret is redacted. */
export const SECRET_RUN = 12;

/**
 * A function that replaces every secret (whole, and every run of {@link SECRET_RUN} or more of its
 * characters) by `[REDACTED]`; secrets under {@link MIN_SECRET_LENGTH} characters are left alone.
 */
export function redactor(secrets: readonly (string | null | undefined)[]): (s: string) => string {
  const usable = [...new Set(secrets.filter((s): s is string => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH))];
  if (!usable.length) return (s) => s;
  // 8-11 characters: the whole value only (a run of 12 cannot be in it).
  const whole = usable.filter((s) => s.length < SECRET_RUN).sort((a, b) => b.length - a.length);
  const windows = new Set<string>();
  const alphabet = new Uint8Array(0x10000);
  for (const s of usable) {
    if (s.length < SECRET_RUN) continue;
    for (let i = 0; i + SECRET_RUN <= s.length; i++) windows.add(s.slice(i, i + SECRET_RUN));
    for (let i = 0; i < s.length; i++) alphabet[s.charCodeAt(i)] = 1;
  }
  return (text) => {
    if (typeof text !== 'string' || text.length < MIN_SECRET_LENGTH) return text;
    let out = windows.size && text.length >= SECRET_RUN ? redactRuns(text, windows, alphabet) : text;
    for (const w of whole) if (out.includes(w)) out = out.split(w).join(REDACTED);
    return out;
  };
}

/**
 * Every stretch of `s` covered by a window of a secret becomes one `[REDACTED]`. Only windows made
 * of the secrets' characters are looked up, so ordinary text (short words between spaces) costs a
 * character test per position, not a lookup.
 */
function redactRuns(s: string, windows: Set<string>, alphabet: Uint8Array): string {
  let out = '';
  let copied = 0; // s[0, copied) is in `out`
  let coverStart = -1;
  let coverEnd = -1; // the stretch being covered: [coverStart, coverEnd)
  let run = 0; // consecutive characters of the secrets' alphabet ending at i
  for (let i = 0; i < s.length; i++) {
    run = alphabet[s.charCodeAt(i)] ? run + 1 : 0;
    if (run < SECRET_RUN) continue;
    const start = i - SECRET_RUN + 1;
    if (!windows.has(s.slice(start, i + 1))) continue;
    if (start > coverEnd) {
      if (coverStart >= 0) {
        out += s.slice(copied, coverStart) + REDACTED;
        copied = coverEnd;
      }
      coverStart = start;
    }
    coverEnd = i + 1;
  }
  if (coverStart < 0) return s;
  return out + s.slice(copied, coverStart) + REDACTED + s.slice(coverEnd);
}

/**
 * Why a secret cannot be redacted safely (shorter than {@link MIN_SECRET_LENGTH}), for the user;
 * null when every secret is long enough.
 */
export function shortSecretWarning(secrets: readonly (string | null | undefined)[], what = 'the token'): string | null {
  const short = secrets.filter((s): s is string => typeof s === 'string' && s.length > 0 && s.length < MIN_SECRET_LENGTH);
  if (!short.length) return null;
  const n = short[0].length;
  return (
    `${what} is ${n} character${n === 1 ? '' : 's'} long: values under ${MIN_SECRET_LENGTH} characters are not redacted ` +
    `(they cannot be told from ordinary text), so it may appear in the output and the reports. ` +
    `A real bearer token is far longer: check the value given.`
  );
}

/** A deep copy of `value` with every string (keys too) passed through `redact`. */
export function redactDeep<T>(value: T, redact: (s: string) => string): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactDeep(v, redact)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [redact(k), redactDeep(v, redact)])) as T;
  }
  return value;
}
