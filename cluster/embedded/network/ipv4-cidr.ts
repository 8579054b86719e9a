/** An IPv4 prefix such as 10.244.0.0/24, parsed and checked. */
export interface Ipv4Cidr {
  /** Network address as an unsigned 32-bit number (host bits cleared). */
  network: number;
  prefixLength: number;
  /** Canonical text, e.g. "10.244.0.0/24". */
  text: string;
}

export function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new Error(`not an IPv4 address: "${text}"`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

function mask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : 0xffffffff - (2 ** (32 - prefixLength) - 1);
}

export function parseIpv4Cidr(text: string): Ipv4Cidr {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  if (!m || Number(m[2]) > 32) throw new Error(`not an IPv4 CIDR: "${text}"`);
  const prefixLength = Number(m[2]);
  const addr = parseIpv4(m[1]);
  const network = (addr & mask(prefixLength)) >>> 0;
  if (network !== addr) throw new Error(`"${text}" has host bits set; did you mean ${formatIpv4(network)}/${prefixLength}?`);
  return { network, prefixLength, text: `${formatIpv4(network)}/${prefixLength}` };
}

export function cidrContainsAddress(cidr: Ipv4Cidr, address: string): boolean {
  return (parseIpv4(address) & mask(cidr.prefixLength)) >>> 0 === cidr.network;
}

export function cidrContainsCidr(outer: Ipv4Cidr, inner: Ipv4Cidr): boolean {
  return inner.prefixLength >= outer.prefixLength && cidrContainsAddress(outer, formatIpv4(inner.network));
}
