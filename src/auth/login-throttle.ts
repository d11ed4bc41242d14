import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** How logins to one account are slowed down after failures. */
export interface LoginThrottlePolicy {
  /** Attempts allowed back to back before any wait. */
  freeAttempts: number;
  /** The first wait; each further attempt doubles it. */
  baseDelayMs: number;
  /** The longest wait: short enough that the right password is never locked out for long. */
  maxDelayMs: number;
  /** An account with no attempt for this long starts afresh. */
  forgetAfterMs: number;
}

/** Five free attempts, then 1 s, 2 s, 4 s ... at most 30 s; forgotten after 15 quiet minutes. */
export const LOGIN_THROTTLE_POLICY: LoginThrottlePolicy = { freeAttempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000, forgetAfterMs: 15 * 60_000 };

/** Whether an attempt may go ahead, and if not, for how long it must wait. */
export type ThrottleVerdict = { allowed: true } | { allowed: false; retryAfterMs: number };

/**
 * Per-account login throttling, independent of the client's address. `attempt` counts an attempt before
 * the password is checked (so a burst of parallel guesses cannot all slip through before the first failure
 * is recorded); a refused attempt is not counted, and a successful login resets the account.
 */
export interface LoginThrottle {
  readonly backend: 'redis' | 'memory';
  /** Counts an attempt at `account`, or refuses it with the time left to wait. */
  attempt(account: string): Promise<ThrottleVerdict>;
  /** Forgets the account's attempts after a successful login. */
  reset(account: string): Promise<void>;
  close(): void;
}

/** The wait after the `n`-th attempt (1-based) since the last success. */
export function delayAfter(n: number, p: LoginThrottlePolicy): number {
  if (n < p.freeAttempts) return 0;
  return Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.min(30, n - p.freeAttempts));
}

// Accounts are emails: keys hold a hash, so neither memory dumps nor Redis carry the addresses.
const accountKey = (account: string): string => createHash('sha256').update(account).digest('base64url');

/** Counts in process memory: right for the single-process embedded default. */
export class MemoryLoginThrottle implements LoginThrottle {
  readonly backend = 'memory' as const;
  private readonly accounts = new Map<string, { attempts: number; nextAt: number; lastAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly now: () => number,
    private readonly policy: LoginThrottlePolicy = LOGIN_THROTTLE_POLICY,
    // A spray of made-up emails must not grow memory without bound; the oldest entries go first.
    private readonly maxAccounts = 100_000,
  ) {
    this.sweeper = setInterval(() => {
      const cutoff = this.now() - this.policy.forgetAfterMs;
      for (const [k, a] of this.accounts) if (a.lastAt < cutoff) this.accounts.delete(k);
    }, 60_000).unref();
  }

  async attempt(account: string): Promise<ThrottleVerdict> {
    const key = accountKey(account);
    const now = this.now();
    let state = this.accounts.get(key);
    if (state && state.lastAt < now - this.policy.forgetAfterMs) state = undefined;
    if (state && now < state.nextAt) return { allowed: false, retryAfterMs: state.nextAt - now };
    const attempts = (state?.attempts ?? 0) + 1;
    this.accounts.delete(key);
    this.accounts.set(key, { attempts, nextAt: now + delayAfter(attempts, this.policy), lastAt: now });
    if (this.accounts.size > this.maxAccounts) this.accounts.delete(this.accounts.keys().next().value!);
    return { allowed: true };
  }

  async reset(account: string): Promise<void> {
    this.accounts.delete(accountKey(account));
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}

// Check and count in one step, so two nodes cannot both let the same attempt through. Times come from the
// caller's clock (ARGV), not Redis', so tests can drive it; nodes' clocks only need to agree to a second.
const ATTEMPT_SCRIPT = `
local now = tonumber(ARGV[1])
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
local nextAt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
if now < nextAt then return nextAt - now end
attempts = attempts + 1
local delay = 0
if attempts >= tonumber(ARGV[2]) then
  delay = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(30, attempts - tonumber(ARGV[2])))
end
redis.call('HSET', KEYS[1], 'attempts', attempts, 'next', now + delay)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 0
`;

/** Counts in Redis so that every `serve` node throttles an account the same. */
export class RedisLoginThrottle implements LoginThrottle {
  readonly backend = 'redis' as const;

  constructor(
    private readonly redis: Redis,
    private readonly now: () => number,
    private readonly policy: LoginThrottlePolicy = LOGIN_THROTTLE_POLICY,
    private readonly prefix = 'vocelio:login:',
  ) {}

  async attempt(account: string): Promise<ThrottleVerdict> {
    const p = this.policy;
    const wait = Number(await this.redis.eval(ATTEMPT_SCRIPT, 1, `${this.prefix}${accountKey(account)}`, this.now(), p.freeAttempts, p.baseDelayMs, p.maxDelayMs, p.forgetAfterMs));
    return wait > 0 ? { allowed: false, retryAfterMs: wait } : { allowed: true };
  }

  async reset(account: string): Promise<void> {
    await this.redis.del(`${this.prefix}${accountKey(account)}`);
  }

  close(): void {}
}
