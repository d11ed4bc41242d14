import fp from 'fastify-plugin';
import { OrganizationsService } from './organizations.service.js';
import { InvitationsService } from './invitations.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Organizations, users and memberships. */
    organizations: OrganizationsService;
    /** Invitations to join an organization. */
    invitations: InvitationsService;
  }
}

/** Registers the organizations and invitations services; membership changes revoke keys, so it needs the auth services. */
export const organizationsPlugin = fp(
  async (app) => {
    const invitations = new InvitationsService(app.db, app.audit);
    app.decorate('invitations', invitations);
    app.decorate('organizations', new OrganizationsService(app.db, app.audit, app.apiKeys, invitations));
  },
  { name: 'organizations', dependencies: ['db', 'audit', 'auth-services'] },
);

export { memberRoutes, meRoutes } from './routes.js';
export { invitationRoutes, invitationAcceptRoutes } from './invitations.routes.js';
