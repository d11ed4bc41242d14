import fp from 'fastify-plugin';
import { CallControl } from '../telephony/call-control.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Outbound calls and hangups at the carrier. */
    callControl: CallControl;
  }
}

/** Registers call control (needs calls, agents, numbers and the telephony provider). */
export const callControlPlugin = fp(
  async (app) => {
    app.decorate(
      'callControl',
      new CallControl({ calls: app.calls, agents: app.agents, numbers: app.numbers, telephony: app.telephony, sessions: app.callSessions, publicUrl: app.config.publicUrl, log: app.log }),
    );
  },
  { name: 'call-control', dependencies: ['telephony', 'numbers'] },
);

export { callRoutes } from './calls.routes.js';
export { testCallRoutes } from './routes.js';
