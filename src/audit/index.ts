import fp from 'fastify-plugin';
import { AuditService } from './audit.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The audit log. */
    audit: AuditService;
  }
}

/** Registers the audit service. */
export const auditPlugin = fp(
  async (app) => {
    app.decorate('audit', new AuditService(app.db));
  },
  { name: 'audit', dependencies: ['db'] },
);

export { auditRoutes } from './routes.js';
