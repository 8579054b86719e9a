/**
 * What can be told of a bearer token without its key: when a JWT expires (its `exp` claim, read
 * without verifying the signature; this is for warnings and explanations, never for trust).
 */
import { decodeJwt } from 'jose';

/** The token's `exp` in epoch ms; null when it is not a JWT or has no numeric `exp`. */
export function tokenExpiresAt(token: string | null | undefined): number | null {
  if (!token) return null;
  try {
    const exp = decodeJwt(token).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** `ms` as "34 min 30 s", "45 s", "2 h 5 min". */
export function spell(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}
