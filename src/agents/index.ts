import fp from 'fastify-plugin';
import { AgentsService } from './agents.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Agent definitions. */
    agents: AgentsService;
  }
}

/** Registers the agents service on the app. */
export const agentsPlugin = fp(
  async (app) => {
    app.decorate('agents', new AgentsService(app.db));
  },
  { name: 'agents', dependencies: ['db'] },
);

export { agentRoutes } from './routes.js';
