import type { Config } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { migrate } from './db/migrate.js';
import { createJobQueue } from './queue/create-queue.js';
import type { Consumer, JobQueue } from './queue/queue.js';
import { AuditService } from './audit/audit.service.js';
import { SessionsService } from './auth/sessions.service.js';
import { consumeMaintenance, schedulePurge } from './maintenance/jobs.js';
import { CallsService } from './calls/calls.service.js';
import { EventsService } from './events/events.service.js';
import { EventFeed } from './events/event-feed.js';
import { DeliveriesService } from './events/deliveries.service.js';
import { EventConsumerRegistry } from './events/consumers.js';
import { EventDispatcher } from './events/dispatcher.js';

/** The long-lived resources a `vocelio` process holds, opened in order and closed in reverse. */
export interface Runtime {
  database: Database;
  queue: JobQueue;
  /** New durable events as they commit; the app's event stream and the dispatcher share it. */
  eventFeed: EventFeed;
  close(): Promise<void>;
}

/** Opens the database (applying pending migrations) and the job queue. */
export async function openRuntime(config: Config, opts: { migrate: boolean } = { migrate: true }): Promise<Runtime> {
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    if (opts.migrate) await migrate(database);
  } catch (err) {
    await database.close();
    throw err;
  }
  const queue = createJobQueue({ redisUrl: config.redisUrl, onError: (err) => console.error(`queue: ${err.message}`) });
  const eventFeed = new EventFeed(database, new EventsService(database.db), { pollMs: config.events.pollMs, onError: (err) => console.error(`event feed: ${err.message}`) });
  return {
    database,
    queue,
    eventFeed,
    close: async () => {
      await queue.close();
      await eventFeed.close();
      await database.close();
    },
  };
}

/**
 * The consumers of durable events. Each domain adds its own here (`registry.register({ name, types,
 * handle })`); none exist yet, so events are stored, streamed and marked dispatched.
 */
export function eventConsumers(_runtime: Runtime, _config: Config): EventConsumerRegistry {
  return new EventConsumerRegistry();
}

/** Starts every job consumer this build has; `vocelio worker` runs them, and so does the embedded `serve`. */
export async function startConsumers(runtime: Runtime, config: Config, log: (msg: string) => void): Promise<Consumer[]> {
  const db = runtime.database.db;
  const sessions = new SessionsService(db, new AuditService(db), config.sessionTtlHours);
  const calls = new CallsService(db);
  const deliveries = new DeliveriesService(db);
  const consumers: Consumer[] = [
    consumeMaintenance(runtime.queue, [
      { name: 'sessions', purge: () => sessions.purgeExpired() },
      { name: 'stream tokens', purge: () => calls.purgeStreamTokens() },
      { name: 'dispatched events', purge: () => deliveries.purgeDispatched(config.events.retentionDays) },
    ], log),
  ];
  await schedulePurge(runtime.queue);
  const dispatcher = new EventDispatcher({
    events: new EventsService(db),
    deliveries,
    feed: runtime.eventFeed,
    queue: runtime.queue,
    consumers: eventConsumers(runtime, config),
    log,
  });
  await dispatcher.start();
  consumers.push(dispatcher);
  return consumers;
}
