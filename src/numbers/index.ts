import fp from 'fastify-plugin';
import { NumbersService } from './numbers.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Phone numbers: carrier inventory, purchase, assignment to agents. */
    numbers: NumbersService;
  }
}

/** Registers the numbers service (needs the carrier, which may be absent). */
export const numbersPlugin = fp(
  async (app) => {
    app.decorate(
      'numbers',
      new NumbersService(app.db, app.agents, app.telephony, {
        voiceUrl: `${app.config.publicUrl}/twilio/voice`,
        statusCallbackUrl: `${app.config.publicUrl}/twilio/status`,
      }),
    );
  },
  { name: 'numbers', dependencies: ['db', 'agents', 'carrier'] },
);

export { numberRoutes } from './routes.js';
