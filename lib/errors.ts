/** Text for anything thrown or kept as an error: never "[object Object]". */
export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  if (e === null || e === undefined || typeof e !== 'object') return String(e);
  const m = (e as { message?: unknown }).message;
  if (typeof m === 'string') return m;
  try {
    return JSON.stringify(e);
  } catch {
    return Object.prototype.toString.call(e);
  }
}

/** The text of an error and its causes (fetch hides the socket error in `cause`). */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; e && i < 4; i++) {
    const x = e as { code?: string; cause?: unknown };
    const text = errorText(e);
    if (!parts.some((p) => p.includes(text))) parts.push(x.code && !text.includes(x.code) ? `${text} (${x.code})` : text);
    e = x.cause;
  }
  return parts.join(': ');
}
