import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import type { ReleaseSpec } from '../lib/kube/deploy.ts';
import { renderKustomization } from '../lib/kube/render.ts';

/** The license API's kustomize overlays. */
export const overlayDir = (overlay: 'embedded' | 'kind' | 'gke') =>
  fileURLToPath(new URL(`../license-api/kubernetes/overlays/${overlay}`, import.meta.url));

/** A release of the license API: `license-api:<tag>` from an overlay, with optional extra env (faults). */
export function licenseApiRelease(tag: string, opts: { overlay?: 'embedded' | 'kind' | 'gke'; env?: Record<string, string> } = {}): ReleaseSpec {
  return { kustomization: overlayDir(opts.overlay ?? 'embedded'), deployment: 'license-api', container: 'license-api', image: `license-api:${tag}`, version: tag, env: opts.env };
}

/** A bearer token the overlay's license API accepts (HS256 with the overlay's own secret). */
export async function licenseApiToken(overlay: 'embedded' | 'kind', subject = 'verdict'): Promise<string> {
  const secret = (await renderKustomization(overlayDir(overlay))).find((x) => x.kind === 'Secret' && x.metadata.name.startsWith('license-api-secrets'));
  const key = Buffer.from(secret?.data?.JWT_SECRET ?? '', 'base64').toString();
  if (key.length < 32) throw new Error(`the ${overlay} overlay has no usable JWT_SECRET`);
  return await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(subject).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(key));
}
