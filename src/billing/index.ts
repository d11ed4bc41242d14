import fp from 'fastify-plugin';
import { UsageService } from './usage.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Metered provider usage per call. */
    usage: UsageService;
  }
}

/** Registers billing's services: metered usage now; prices, charges and the ledger as they arrive. */
export const billingPlugin = fp(
  async (app) => {
    app.decorate('usage', new UsageService(app.db));
  },
  { name: 'billing', dependencies: ['db'] },
);
