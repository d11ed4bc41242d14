import fp from 'fastify-plugin';
import type { Database, Db } from '../db/client.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The open database (engine, ping, close). */
    database: Database;
    /** The drizzle handle services query through. */
    db: Db;
  }
}

/** Decorates the app with an already-open database; closes it with the app when `owned`. */
export const dbPlugin = fp(
  async (app, opts: { database: Database; owned: boolean }) => {
    app.decorate('database', opts.database);
    app.decorate('db', opts.database.db);
    if (opts.owned) app.addHook('onClose', async () => opts.database.close());
  },
  { name: 'db' },
);
