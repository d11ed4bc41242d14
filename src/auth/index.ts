import fp from 'fastify-plugin';
import { ApiKeysService } from './api-keys.service.js';
import { SessionsService } from './sessions.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** API keys: create, list, revoke, verify. */
    apiKeys: ApiKeysService;
    /** Dashboard login sessions. */
    sessions: SessionsService;
  }
}

/** Registers the API key and session services. */
export const authServicesPlugin = fp(
  async (app) => {
    app.decorate('apiKeys', new ApiKeysService(app.db, app.audit));
    app.decorate('sessions', new SessionsService(app.db, app.audit, app.config.sessionTtlHours));
  },
  { name: 'auth-services', dependencies: ['db', 'audit'] },
);

export { apiKeyRoutes } from './api-keys.routes.js';
export { sessionRoutes } from './session.routes.js';
