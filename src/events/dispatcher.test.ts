import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../../test/helpers/database.js';
import type { Database } from '../db/client.js';
import { createJobQueue } from '../queue/create-queue.js';
import type { JobQueue } from '../queue/queue.js';
import { cliServices } from '../cli/services.js';
import { bootstrapOrganization } from '../organizations/bootstrap.js';
import { EventsService } from './events.service.js';
import { DeliveriesService } from './deliveries.service.js';
import { EventFeed } from './event-feed.js';
import { EventConsumerRegistry, type EventConsumer } from './consumers.js';
import { EventDispatcher } from './dispatcher.js';
import { eventDeliveries, events as eventsTable } from './events.table.js';
import type { StoredEvent } from './event-types.js';

const REDIS_URL = process.env.REDIS_URL;
const backend = REDIS_URL ? 'BullMQ' : 'in-process';

const until = async (check: () => Promise<boolean> | boolean, ms = 10_000, what = 'condition') => {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`the event dispatcher (${backend} queue)`, () => {
  let database: Database;
  let events: EventsService;
  let deliveries: DeliveriesService;
  let orgId: string;
  let redis: Redis | null = null;
  const prefixes: string[] = [];
  /** Everything a test started, closed after it in reverse order (a "process" is a queue, a feed and a dispatcher). */
  let running: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    database = await freshDatabase();
    events = new EventsService(database.db);
    deliveries = new DeliveriesService(database.db);
    const org = await bootstrapOrganization(cliServices(database.db), { organizationName: 'Events', email: 'events@example.test', password: 'a-long-password' });
    orgId = org.organization.id;
    if (REDIS_URL) redis = new Redis(REDIS_URL);
    await database.db.execute(sql`create table consumer_effects (event_id text not null)`);
  });
  afterEach(async () => {
    for (const r of running.reverse()) await r.close();
    running = [];
    if (redis) {
      for (const prefix of prefixes.splice(0)) {
        const keys: string[] = [];
        for await (const batch of redis.scanStream({ match: `${prefix}:*`, count: 500 })) keys.push(...(batch as string[]));
        if (keys.length > 0) await redis.del(...keys);
      }
    }
    // Every test starts from an empty outbox.
    await database.db.delete(eventsTable);
  });
  afterAll(async () => {
    await redis?.quit();
    await database.close();
  });

  const newPrefix = (): string => {
    const prefix = `vtest-${randomBytes(6).toString('hex')}`;
    prefixes.push(prefix);
    return prefix;
  };

  /** One dispatching process: its own queue (sharing Redis keys through `prefix`), feed and dispatcher. */
  async function startProcess(consumers: EventConsumer[], prefix = newPrefix(), sweepMs = 60_000): Promise<{ dispatcher: EventDispatcher; queue: JobQueue; stop(): Promise<void> }> {
    const queue = createJobQueue({ redisUrl: REDIS_URL, prefix, onError: () => {} });
    const feed = new EventFeed(database, new EventsService(database.db), { pollMs: 200, onError: () => {} });
    const registry = new EventConsumerRegistry();
    for (const c of consumers) registry.register(c);
    const dispatcher = new EventDispatcher({ events, deliveries, feed, queue, consumers: registry, log: () => {}, sweepMs });
    await dispatcher.start();
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await dispatcher.close();
      await queue.close();
      await feed.close();
    };
    running.push({ close: stop });
    return { dispatcher, queue, stop };
  }

  const record = (n: number) => events.record(database.db, { organizationId: orgId, type: 'call.created', subject: `call_${n}`, payload: { callId: `call_${n}`, direction: 'inbound', agentId: null, from: null, to: null, status: 'queued', campaignId: null, contactId: null } });

  /** A consumer that counts what it handled, by event id. */
  function counting(name: string, opts: Partial<EventConsumer> = {}) {
    const handled = new Map<string, number>();
    const consumer: EventConsumer = {
      name,
      types: ['call.*'],
      handle: async (event: StoredEvent) => {
        handled.set(event.id, (handled.get(event.id) ?? 0) + 1);
      },
      ...opts,
    };
    return { consumer, handled };
  }

  it('never delivers an event whose transaction rolled back', async () => {
    const { consumer, handled } = counting('audit-trail');
    await database.db
      .transaction(async (tx) => {
        await events.record(tx, { organizationId: orgId, type: 'call.created', subject: 'call_rolled_back', payload: { callId: 'call_rolled_back', direction: 'inbound', agentId: null, from: null, to: null, status: 'queued', campaignId: null, contactId: null } });
        throw new Error('the change failed');
      })
      .catch(() => {});
    const kept = await record(1);
    const { dispatcher } = await startProcess([consumer]);
    await until(() => handled.has(kept), 10_000, 'the committed event delivered');
    await dispatcher.sweep();
    expect([...handled.keys()]).toEqual([kept]);
    expect(await database.db.select().from(eventsTable)).toHaveLength(1);
  });

  it('has each event handled once when two dispatchers race and sweep at once', async () => {
    const { consumer, handled } = counting('billing', {
      // The work and the delivery record commit together, or neither does.
      handle: async (event, tx) => {
        await tx!.execute(sql`insert into consumer_effects values (${event.id})`);
        handled.set(event.id, (handled.get(event.id) ?? 0) + 1);
      },
    });
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => record(i)));
    // Two processes, each with its own queue: the in-process queues cannot deduplicate between them.
    const [a, b] = await Promise.all([startProcess([consumer]), startProcess([consumer])]);
    await Promise.all([a.dispatcher.sweep(), b.dispatcher.sweep(), a.dispatcher.sweep(), b.dispatcher.sweep()]);
    const more = await Promise.all(Array.from({ length: 5 }, (_, i) => record(100 + i)));
    await until(() => [...ids, ...more].every((id) => handled.has(id)), 10_000, 'all 25 events handled');
    await Promise.all([a.dispatcher.sweep(), b.dispatcher.sweep()]);
    await sleep(300);
    expect([...handled.values()].every((n) => n === 1)).toBe(true);
    expect(handled.size).toBe(25);
    // What committed: one effect per event, none twice.
    const effects = await database.db.execute(sql`select count(*)::int as n, count(distinct event_id)::int as d from consumer_effects`);
    expect((effects as unknown as { rows: { n: number; d: number }[] }).rows[0]).toEqual({ n: 25, d: 25 });
    await database.db.execute(sql`delete from consumer_effects`);
  });

  it('delivers events written while no dispatcher ran, after a restart', async () => {
    // The first process takes the events but every attempt fails, then it stops for good.
    const prefix = newPrefix();
    let failedAttempts = 0;
    const failing: EventConsumer = { name: 'webhooks', types: ['*'], backoffMs: 300, attempts: 6, handle: async () => {
      failedAttempts++;
      throw new Error('endpoint unreachable');
    } };
    const before = await Promise.all([record(1), record(2)]);
    const first = await startProcess([failing], prefix);
    await until(() => failedAttempts >= 2, 10_000, 'first attempts');
    await first.stop();
    // Nothing runs while these are written.
    const during = await Promise.all([record(3), record(4)]);
    // The restarted process has a new queue: in-process, the first one's retries are gone with it; on
    // BullMQ they are still in Redis. Either way every event arrives, once.
    const { consumer, handled } = counting('webhooks', { types: ['*'] });
    await startProcess([consumer], prefix);
    await until(() => [...before, ...during].every((id) => handled.has(id)), 10_000, 'all four events delivered');
    expect([...handled.values()]).toEqual([1, 1, 1, 1]);
  });

  it('retries a failing consumer with growing delays while other consumers go on', async () => {
    const attempts: number[] = [];
    const flaky: EventConsumer = { name: 'campaigns', types: ['call.created'], backoffMs: 200, handle: async () => {
      attempts.push(Date.now());
      if (attempts.length < 3) throw new Error('database of the campaign busy');
    } };
    const steady = counting('charges');
    const id = await record(1);
    await startProcess([flaky, steady.consumer]);
    await until(() => steady.handled.has(id), 5_000, 'the steady consumer');
    // The other consumer was not held up behind the failing one's retries.
    expect(attempts.length).toBeLessThan(3);
    await until(() => attempts.length === 3, 10_000, 'three attempts');
    expect(attempts[1]! - attempts[0]!).toBeGreaterThanOrEqual(190);
    expect(attempts[2]! - attempts[1]!).toBeGreaterThanOrEqual(390);
    await until(async () => (await deliveries.isDone(id, 'campaigns')), 5_000, 'the delivery record');
    const rows = await database.db.select().from(eventDeliveries);
    expect(rows.find((r) => r.consumer === 'campaigns')).toMatchObject({ outcome: 'handled', attempts: 3 });
  });

  it('records a dead delivery after the last attempt, and then counts the event as dispatched', async () => {
    const hopeless: EventConsumer = { name: 'crm-sync', types: ['call.*'], attempts: 2, backoffMs: 50, handle: async () => {
      throw new Error('401 from the CRM');
    } };
    const id = await record(1);
    const { dispatcher } = await startProcess([hopeless]);
    await until(async () => (await deliveries.isDone(id, 'crm-sync')), 10_000, 'the dead delivery');
    const [row] = await database.db.select().from(eventDeliveries);
    expect(row).toMatchObject({ consumer: 'crm-sync', outcome: 'dead', attempts: 2, error: '401 from the CRM' });
    await dispatcher.sweep();
    const [event] = await database.db.select().from(eventsTable);
    expect(event?.dispatchedAt).toBeInstanceOf(Date);
  });

  it('marks events no consumer wants as dispatched without queueing anything', async () => {
    const id = await record(1);
    const { dispatcher } = await startProcess([{ ...counting('recordings').consumer, types: ['call.recording.ready'] }]);
    await dispatcher.sweep();
    const [event] = await database.db.select().from(eventsTable);
    expect(event).toMatchObject({ id, dispatchedAt: expect.any(Date) });
    expect(await database.db.select().from(eventDeliveries)).toEqual([]);
  });
});
