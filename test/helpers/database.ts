import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { inject } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';

/**
 * A fresh, migrated database for one test file: a copy of the run's template on PostgreSQL
 * (`DATABASE_URL`), or an in-memory PGlite loaded from the template dump. Closing drops the copy.
 */
export async function freshDatabase(): Promise<Database> {
  const template = inject('dbTemplate');
  if (template.kind === 'pglite') {
    const client = await PGlite.create({ loadDataDir: new Blob([readFileSync(template.dumpPath)]) });
    return openDatabase({ pglite: client });
  }
  const copy = await freshPostgresUrl(template.name);
  const database = await openDatabase({ databaseUrl: copy.url, poolSize: 5 });
  return {
    ...database,
    close: async () => {
      await database.close();
      await copy.drop();
    },
  };
}

/** The tag of this test run's databases: the pid of the vitest process that made the template. */
function runTag(): string {
  const template = inject('dbTemplate');
  return template.kind === 'postgres' ? template.runTag : 'x';
}

/** A new PostgreSQL database (a copy of `template`, or empty) on the run's DATABASE_URL server, for tests that start processes. */
export async function freshPostgresUrl(template?: string): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) throw new Error('freshPostgresUrl needs DATABASE_URL');
  // Named after the run (its pid) so that the run's teardown drops its own copies and no other run's.
  const name = `vocelio_t_${runTag()}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}${template ? ` template ${template}` : ''}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const dropper = new pg.Client({ connectionString: adminUrl });
      await dropper.connect();
      await dropper.query(`drop database if exists ${name} with (force)`).finally(() => dropper.end());
    },
  };
}
