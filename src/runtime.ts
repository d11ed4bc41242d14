import type { Config } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { migrate } from './db/migrate.js';
import { createJobQueue } from './queue/create-queue.js';
import type { Consumer, JobQueue } from './queue/queue.js';
import { AuditService } from './audit/audit.service.js';
import { SessionsService } from './auth/sessions.service.js';
import { consumeMaintenance, schedulePurge } from './maintenance/jobs.js';
import { CallsService } from './calls/calls.service.js';

/** The long-lived resources a `vocelio` process holds, opened in order and closed in reverse. */
export interface Runtime {
  database: Database;
  queue: JobQueue;
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
  return {
    database,
    queue,
    close: async () => {
      await queue.close();
      await database.close();
    },
  };
}

/** Starts every job consumer this build has; `vocelio worker` runs them, and so does the embedded `serve`. */
export async function startConsumers(runtime: Runtime, config: Config, log: (msg: string) => void): Promise<Consumer[]> {
  const db = runtime.database.db;
  const sessions = new SessionsService(db, new AuditService(db), config.sessionTtlHours);
  const calls = new CallsService(db);
  const consumers = [
    consumeMaintenance(runtime.queue, [
      { name: 'sessions', purge: () => sessions.purgeExpired() },
      { name: 'stream tokens', purge: () => calls.purgeStreamTokens() },
    ], log),
  ];
  await schedulePurge(runtime.queue);
  return consumers;
}
