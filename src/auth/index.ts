import fp from 'fastify-plugin';
import { ApiKeysService } from './api-keys.service.js';
import { SessionsService } from './sessions.service.js';
import { MemoryLoginThrottle, RedisLoginThrottle, type LoginThrottle } from './login-throttle.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** API keys: create, list, revoke, verify. */
    apiKeys: ApiKeysService;
    /** Dashboard login sessions. */
    sessions: SessionsService;
    /** Per-account login throttling (in Redis when configured, so every node counts the same). */
    loginThrottle: LoginThrottle;
  }
}

/** Registers the API key and session services and the login throttle. */
export const authServicesPlugin = fp(
  async (app) => {
    app.decorate('apiKeys', new ApiKeysService(app.db, app.audit));
    app.decorate('sessions', new SessionsService(app.db, app.audit, app.config.sessionTtlHours));
    const inner: LoginThrottle = app.redis ? new RedisLoginThrottle(app.redis, app.clock) : new MemoryLoginThrottle(app.clock);
    // Like the rate limiter: a Redis outage lets logins through (the password is still checked) rather than
    // locking everyone out.
    app.decorate('loginThrottle', {
      backend: inner.backend,
      attempt: async (account) => {
        try {
          return await inner.attempt(account);
        } catch (err) {
          app.log.warn({ err }, 'login throttle unavailable; allowing the attempt');
          return { allowed: true };
        }
      },
      reset: async (account) => {
        await inner.reset(account).catch((err: unknown) => app.log.warn({ err }, 'login throttle unavailable; not reset'));
      },
      close: () => inner.close(),
    } satisfies LoginThrottle);
    app.addHook('onClose', async () => app.loginThrottle.close());
  },
  { name: 'auth-services', dependencies: ['db', 'audit', 'rate-limit'] },
);

export { apiKeyRoutes } from './api-keys.routes.js';
export { sessionRoutes } from './session.routes.js';
