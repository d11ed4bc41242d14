import fp from 'fastify-plugin';
import { CallsService } from './calls.service.js';
import { CallTurnsService } from './call-turns.service.js';
import { CallEventBus } from './call-events.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Call records and stream tokens. */
    calls: CallsService;
    /** Call transcripts, turn by turn. */
    callTurns: CallTurnsService;
    /** Live call events, fanned out over Redis when configured. */
    callEvents: CallEventBus;
  }
}

/** Registers call records, transcripts and the live call event bus (over Redis when configured). */
export const callsPlugin = fp(
  async (app) => {
    app.decorate('calls', new CallsService(app.db));
    app.decorate('callTurns', new CallTurnsService(app.db));
    const events = new CallEventBus(app.redis);
    await events.start();
    app.decorate('callEvents', events);
    app.addHook('onClose', async () => {
      await events.close();
    });
  },
  { name: 'calls', dependencies: ['db', 'rate-limit'] },
);

export { callRoutes } from './calls.routes.js';
export { testCallRoutes } from './routes.js';
