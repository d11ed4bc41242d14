import fp from 'fastify-plugin';
import { Redis } from 'ioredis';
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from './rate-limit.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Redis when `REDIS_URL` is set, else null. */
    redis: Redis | null;
    /** Shared request counters: in Redis when configured, in memory otherwise. */
    rateLimiter: RateLimiter;
  }
}

/** Opens a Redis client for app use (not for BullMQ, which wants its own connections). */
export function createRedis(url: string): Redis {
  // A few quick retries, then fail the command: a request must not hang on a Redis outage.
  return new Redis(url, { maxRetriesPerRequest: 2, connectTimeout: 5000, lazyConnect: false });
}

/** Decorates `redis` and `rateLimiter`. A Redis rate-limit error lets the request through: an outage must not take the API down. */
export const redisPlugin = fp(
  async (app, opts: { redisUrl?: string; redis?: Redis }) => {
    const owned = !opts.redis && Boolean(opts.redisUrl);
    const redis = opts.redis ?? (opts.redisUrl ? createRedis(opts.redisUrl) : null);
    redis?.on('error', (err) => app.log.warn({ err: err.message }, 'redis error'));
    app.decorate('redis', redis);
    const inner: RateLimiter = redis ? new RedisRateLimiter(redis) : new MemoryRateLimiter();
    const limiter: RateLimiter = {
      backend: inner.backend,
      hit: async (key, limit, windowMs) => {
        try {
          return await inner.hit(key, limit, windowMs);
        } catch (err) {
          app.log.warn({ err }, 'rate limiter unavailable; allowing request');
          return { allowed: true, limit, remaining: limit, resetMs: windowMs };
        }
      },
      close: () => inner.close(),
    };
    app.decorate('rateLimiter', limiter);
    app.addHook('onClose', async () => {
      limiter.close();
      if (owned && redis) await redis.quit().catch(() => redis.disconnect());
    });
  },
  { name: 'rate-limit' },
);
