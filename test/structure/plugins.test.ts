// Each domain folder's plugin registers that folder's services and names the plugins it needs, so the app
// can be assembled in any order fastify accepts and a missing piece fails at start, not at the first call.
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbPlugin } from '../../src/plugins/db.js';
import { redisPlugin } from '../../src/plugins/redis.js';
import { callsPlugin } from '../../src/calls/index.js';
import { billingPlugin } from '../../src/billing/index.js';
import { carrierPlugin, telephonyPlugin } from '../../src/telephony/index.js';
import { numbersPlugin } from '../../src/numbers/index.js';
import { CallsService } from '../../src/calls/calls.service.js';
import { CallTurnsService } from '../../src/calls/call-turns.service.js';
import { CallEventBus } from '../../src/calls/call-events.js';
import { CallLifecycle } from '../../src/calls/lifecycle/call-lifecycle.js';
import { UsageService } from '../../src/billing/usage.service.js';
import type { Database } from '../../src/db/client.js';
import { freshDatabase } from '../helpers/database.js';
import { loadConfig } from '../../src/config.js';

const META = Symbol.for('plugin-meta');
const metaOf = (plugin: unknown) => (plugin as Record<symbol, { name: string; dependencies?: string[] }>)[META]!;

describe('domain plugins', () => {
  let database: Database;
  beforeAll(async () => {
    database = await freshDatabase();
  });
  afterAll(async () => {
    await database.close();
  });

  it('calls and billing register their own services, with no telephony in the app', async () => {
    const app = Fastify({ logger: false });
    await app.register(dbPlugin, { database, owned: false });
    await app.register(redisPlugin, { redisUrl: undefined });
    await app.register(callsPlugin, { lifecycle: loadConfig({}).lifecycle });
    await app.register(billingPlugin);
    await app.ready();
    expect(app.calls).toBeInstanceOf(CallsService);
    expect(app.callTurns).toBeInstanceOf(CallTurnsService);
    expect(app.callEvents).toBeInstanceOf(CallEventBus);
    expect(app.callLifecycle).toBeInstanceOf(CallLifecycle);
    expect(app.usage).toBeInstanceOf(UsageService);
    expect(app.hasDecorator('callControl')).toBe(false);
    expect(app.hasDecorator('callSessions')).toBe(false);
    await app.close();
  });

  it('telephony names the plugins whose services its calls use', () => {
    expect(metaOf(telephonyPlugin).dependencies).toEqual(expect.arrayContaining(['calls', 'billing', 'recordings', 'numbers', 'carrier', 'agents', 'metrics']));
    // Numbers need only the carrier, not live calls: otherwise telephony and numbers would wait on each other.
    expect(metaOf(numbersPlugin).dependencies).toContain('carrier');
    expect(metaOf(numbersPlugin).dependencies).not.toContain('telephony');
    expect(metaOf(carrierPlugin).name).toBe('carrier');
  });

  it('telephony refuses to start without the calls plugin', async () => {
    const app = Fastify({ logger: false });
    await app.register(dbPlugin, { database, owned: false });
    await expect(app.register(telephonyPlugin, { mediaEngine: null })).rejects.toThrow(/dependency 'calls' of plugin 'telephony'/);
    await app.close().catch(() => {});
  });
});
