import fp from 'fastify-plugin';
import { CallsService } from './calls.service.js';
import { CallTurnsService } from './call-turns.service.js';
import { CallEventBus } from './call-events.js';
import { CallLifecycle } from './lifecycle/call-lifecycle.js';
import { NodeLease } from './lifecycle/node-lease.js';
import { STREAM_TOKEN_TTL_MS } from './calls.service.js';
import type { LifecycleConfig } from '../config.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Call records and stream tokens. */
    calls: CallsService;
    /** Call transcripts, turn by turn. */
    callTurns: CallTurnsService;
    /** Live call events, fanned out over Redis when configured. */
    callEvents: CallEventBus;
    /** The end of each call, exactly once: end signals, finalization, `call.ended`. */
    callLifecycle: CallLifecycle;
    /** This process's lease as a node holding calls' media (crash recovery). */
    nodeLease: NodeLease;
  }
}

/**
 * Registers call records, transcripts, the call lifecycle, this node's lease and the live call event bus
 * (over Redis when configured). `exclusiveNode`: no other node can share the database (the embedded one is
 * locked to this process), so calls of earlier leases are orphans at once.
 */
export const callsPlugin = fp(
  async (app, opts: { lifecycle: LifecycleConfig; exclusiveNode?: boolean }) => {
    const { lifecycle } = opts;
    app.decorate('calls', new CallsService(app.db));
    app.decorate('callLifecycle', new CallLifecycle(app.db, { finalizeGraceMs: lifecycle.finalizeGraceMs, placementDeadlineMs: lifecycle.placementDeadlineMs, testCallTtlMs: STREAM_TOKEN_TTL_MS }));
    const lease = new NodeLease(app.db, lifecycle.nodeHeartbeatMs, (err) => app.log.warn({ err }, 'node lease renewal failed'));
    app.decorate('nodeLease', lease);
    app.addHook('onReady', async () => {
      await lease.start({ exclusive: opts.exclusiveNode === true });
    });
    app.addHook('onClose', async () => {
      await lease.stop();
    });
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
