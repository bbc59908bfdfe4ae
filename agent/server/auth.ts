/**
 * Bearer-token authentication at the WebSocket upgrade, compared in constant
 * time, and a per-address back-off after repeated failures.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { MIN_SECRET_LENGTH } from './logger';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * The shortest bearer token the agent takes (`init` writes 43 characters: 32
 * random bytes, base64url). A shorter one is guessable, and the logger could
 * not scrub it without mangling ordinary text.
 */
export const MIN_TOKEN_LENGTH = MIN_SECRET_LENGTH;

/** Code of the refusal of a token shorter than MIN_TOKEN_LENGTH. */
export const TOKEN_TOO_SHORT = 'TOKEN_TOO_SHORT';

export class TokenCheck {
  private expected: Buffer | null;

  /** `token` null: no authentication (only allowed on loopback, see server.ts). */
  constructor(token: string | null) {
    this.expected = token === null ? null : digest(token);
  }

  /** A rotated token (serve's SIGHUP): from now on only it is accepted; connections already in stay. */
  replace(token: string): void {
    if (this.expected === null) throw new Error('the agent runs without a token: there is none to replace');
    this.expected = digest(token);
  }

  get required(): boolean {
    return this.expected !== null;
  }

  /** True if the Authorization header carries the token. */
  accepts(authorization: string | undefined): boolean {
    if (this.expected === null) return true;
    const match = /^Bearer (\S+)$/.exec(authorization ?? '');
    // Hash both sides so the comparison takes the same time whatever the length.
    const offered = digest(match?.[1] ?? '');
    return timingSafeEqual(offered, this.expected) && match !== null;
  }
}

/** From the `freeFailures`-th failure in a window on, an address waits 1 s, 2 s, 4 s, … up to `maxDelayMs`. */
export class AuthBackoff {
  private readonly failures = new Map<string, { count: number; last: number; blockedUntil: number }>();

  constructor(
    private readonly freeFailures = 5,
    private readonly windowMs = 60_000,
    private readonly maxDelayMs = 300_000,
  ) {}

  /** Milliseconds the address must still wait (0: may try). */
  blockedFor(address: string, now = Date.now()): number {
    const entry = this.failures.get(address);
    return entry ? Math.max(0, entry.blockedUntil - now) : 0;
  }

  fail(address: string, now = Date.now()): void {
    const entry = this.failures.get(address);
    const count = entry && now - entry.last < this.windowMs ? entry.count + 1 : 1;
    const over = count - this.freeFailures + 1;
    const blockedUntil = over > 0 ? now + Math.min(this.maxDelayMs, 1000 * 2 ** (over - 1)) : 0;
    this.failures.set(address, { count, last: now, blockedUntil });
    if (this.failures.size > 10_000) this.failures.delete(this.failures.keys().next().value!);
  }

  succeed(address: string): void {
    this.failures.delete(address);
  }
}
