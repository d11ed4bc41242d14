import type { Redis } from 'ioredis';

/** The outcome of counting one request against a limit. */
export interface RateLimitResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

/** Fixed-window request counting; Redis-backed when shared by several nodes, in memory otherwise. */
export interface RateLimiter {
  readonly backend: 'redis' | 'memory';
  hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult>;
  close(): void;
}

/** Counts in process memory: right for the single-process embedded default. */
export class MemoryRateLimiter implements RateLimiter {
  readonly backend = 'memory' as const;
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor() {
    // Expired windows would otherwise accumulate one entry per client forever.
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
    }, 60_000).unref();
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
    const now = Date.now();
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      w = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, w);
    }
    w.count += 1;
    return { allowed: w.count <= limit, limit, remaining: Math.max(0, limit - w.count), resetMs: w.resetAt - now };
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}

/** Counts in Redis so that every `serve` node shares one budget per key. */
export class RedisRateLimiter implements RateLimiter {
  readonly backend = 'redis' as const;

  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'vocelio:rl:',
  ) {}

  async hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
    const now = Date.now();
    const windowStart = Math.floor(now / windowMs) * windowMs;
    const redisKey = `${this.prefix}${key}:${windowStart}`;
    const res = await this.redis.multi().incr(redisKey).pexpire(redisKey, windowMs + 1000).exec();
    const count = Number(res?.[0]?.[1] ?? 0);
    return { allowed: count <= limit, limit, remaining: Math.max(0, limit - count), resetMs: windowStart + windowMs - now };
  }

  close(): void {}
}
