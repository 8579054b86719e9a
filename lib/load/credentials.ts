/**
 * Credentials that change during a load run (app-agnostic): a scenario asks its CredentialSource for
 * every request, so a run can follow a token issuer that rotates its signing key. `TokenClients`
 * models a fleet of clients of such an issuer: each holds a token and renews it (from whatever key
 * the issuer signs with then) once half its lifetime has passed, the renewals staggered across the
 * clients, so that after the issuer switches keys the tokens of the old key stay in use until each
 * client renews, as real clients keep theirs. How a token is made is the caller's (`mint`).
 */

/** A bearer credential asked for every request. */
export interface CredentialSource {
  current(): string;
}

export interface IssuedToken {
  /** The signing key's id. */
  key: string;
  /** Epoch ms. */
  issuedAt: number;
  expiresAt: number;
}

export interface TokenClientsOptions {
  /** How many clients (tokens in use at once). Default 8. */
  clients?: number;
  /** Each token's lifetime, ms (whole seconds). */
  lifetimeMs: number;
  /** The issuer's signing key at the start. */
  key: string;
  /** Makes a token signed with `key`, valid for `lifetimeSeconds`. */
  mint(key: string, lifetimeSeconds: number): Promise<string>;
  /** How often renewals are looked for, ms. Default 250. */
  tickMs?: number;
}

interface Client {
  token: string;
  key: string;
  renewAt: number;
  renewing: boolean;
}

export class TokenClients implements CredentialSource {
  readonly #o: Required<TokenClientsOptions>;
  readonly #clients: Client[] = [];
  /** Every token handed to a client, in order. */
  readonly issued: IssuedToken[] = [];
  /** Tokens handed out per key id (one per request). */
  readonly sent = new Map<string, number>();
  #key: string;
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  #errors: string[] = [];

  constructor(o: TokenClientsOptions) {
    if (!(o.lifetimeMs >= 2000) || o.lifetimeMs % 1000) throw new RangeError('lifetimeMs must be whole seconds, at least 2 s');
    this.#o = { clients: 8, tickMs: 250, ...o };
    this.#key = o.key;
  }

  /** The key new tokens are signed with. */
  get key(): string {
    return this.#key;
  }

  /** Mints each client's first token; renewals are staggered over the first half lifetime. */
  async start(): Promise<void> {
    const n = this.#o.clients;
    for (let i = 0; i < n; i++) {
      const { token, key } = await this.#mint();
      this.#clients.push({ token, key, renewAt: Date.now() + ((i + 1) / n) * (this.#o.lifetimeMs / 2), renewing: false });
    }
    this.#timer = setInterval(() => this.#renew(), this.#o.tickMs);
    this.#timer.unref();
  }

  /** The issuer signs with `key` from now on; the clients move to it as each renews. */
  use(key: string): void {
    this.#key = key;
  }

  current(): string {
    const c = this.#clients[this.#next++ % this.#clients.length];
    if (!c) throw new Error('TokenClients: start() first');
    this.sent.set(c.key, (this.sent.get(c.key) ?? 0) + 1);
    return c.token;
  }

  /** When the last token signed with `key` expires (epoch ms), or null when none was issued. */
  lastExpiryOf(key: string): number | null {
    const mine = this.issued.filter((t) => t.key === key);
    return mine.length ? Math.max(...mine.map((t) => t.expiresAt)) : null;
  }

  /** Whether any client still holds a token of `key`. */
  holds(key: string): boolean {
    return this.#clients.some((c) => c.key === key);
  }

  /** Renewals that failed (a mint that threw), for the evidence. */
  get errors(): readonly string[] {
    return this.#errors;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #mint(): Promise<{ token: string; key: string }> {
    const key = this.#key;
    const issuedAt = Date.now();
    const token = await this.#o.mint(key, this.#o.lifetimeMs / 1000);
    this.issued.push({ key, issuedAt, expiresAt: issuedAt + this.#o.lifetimeMs });
    return { token, key };
  }

  #renew(): void {
    const now = Date.now();
    for (const c of this.#clients) {
      if (c.renewing || now < c.renewAt) continue;
      c.renewing = true;
      this.#mint().then(
        ({ token, key }) => {
          c.token = token;
          c.key = key;
          c.renewAt = Date.now() + this.#o.lifetimeMs / 2;
          c.renewing = false;
        },
        (err) => {
          c.renewing = false;
          if (this.#errors.length < 10) this.#errors.push(String((err as Error)?.message ?? err));
        },
      );
    }
  }
}
