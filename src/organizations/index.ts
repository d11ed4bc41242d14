import fp from 'fastify-plugin';
import { OrganizationsService } from './organizations.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Organizations, users and memberships. */
    organizations: OrganizationsService;
  }
}

/** Registers the organizations service. */
export const organizationsPlugin = fp(
  async (app) => {
    app.decorate('organizations', new OrganizationsService(app.db, app.audit));
  },
  { name: 'organizations', dependencies: ['db', 'audit'] },
);

export { memberRoutes, meRoutes } from './routes.js';
