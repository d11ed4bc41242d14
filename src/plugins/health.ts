import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { StringEnum } from '../shared/schemas.js';

const Check = StringEnum(['ok', 'failed', 'not_configured'] as const);

/** `/health` (the process is up) and `/ready` (its database, and Redis when configured, answer). */
export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health', {
    schema: { summary: 'Liveness', tags: ['health'], security: [], response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
  }, async () => ({ status: 'ok' as const }));

  const Ready = Type.Object({ status: StringEnum(['ready', 'not_ready'] as const), checks: Type.Object({ database: Check, redis: Check }) });
  app.get('/ready', {
    schema: { summary: 'Readiness', tags: ['health'], security: [], response: { 200: Ready, 503: Ready } },
  }, async (_req, reply) => {
    const within = <T>(p: Promise<T>) => Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('timeout')), 2000).unref())]);
    const database = await within(app.database.ping()).then(() => 'ok' as const, () => 'failed' as const);
    const redis = app.redis ? await within(app.redis.ping()).then(() => 'ok' as const, () => 'failed' as const) : ('not_configured' as const);
    const ready = database === 'ok' && redis !== 'failed';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: { database, redis } });
  });
};
