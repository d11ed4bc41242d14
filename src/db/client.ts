import { join } from 'node:path';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import * as schema from './schema.js';
import { ensurePrivateDir, restrictTree } from '../shared/data-dir.js';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';

/** The drizzle database every service uses, whichever engine is underneath. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** A transaction handle; services accept `Db | Tx` so callers can compose them in one transaction. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** An open database: the drizzle handle plus what only the engine knows. */
export interface Database {
  readonly db: Db;
  readonly kind: 'postgres' | 'pglite';
  /** A short description for logs and the test banner, without credentials. */
  readonly describe: string;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** The raw engine, for migrations. */
  readonly engine: { kind: 'postgres'; pool: pg.Pool } | { kind: 'pglite'; client: PGlite };
}

/** Options for {@link openDatabase}. */
export interface OpenDatabaseOptions {
  databaseUrl?: string;
  /** Directory for PGlite's files; ignored with `databaseUrl`. */
  dataDir?: string;
  /** An already-open PGlite (tests clone a migrated template into memory). */
  pglite?: PGlite;
  poolSize?: number;
}

// Postgres returns int8 (counts, sums) as strings by default; our counts fit in a JS number.
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10));

/**
 * Opens PostgreSQL when a URL is given, else PGlite under `dataDir/pglite` (created owner-only if missing),
 * locked to this process: another process opening the same directory gets DataDirLockedError.
 */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  if (opts.databaseUrl) {
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: opts.poolSize ?? 10, idleTimeoutMillis: 30_000 });
    // An idle client losing its connection must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    const db = drizzlePg(pool, { schema }) as unknown as Db;
    const u = new URL(opts.databaseUrl);
    return {
      db,
      kind: 'postgres',
      describe: `postgres ${u.hostname}:${u.port || 5432}${u.pathname}`,
      engine: { kind: 'postgres', pool },
      ping: async () => {
        await pool.query('select 1');
      },
      close: () => pool.end(),
    };
  }
  let client = opts.pglite;
  let describe = 'pglite (in memory)';
  let lock: DataDirLock | null = null;
  if (!client) {
    if (!opts.dataDir) throw new Error('openDatabase needs databaseUrl, dataDir or pglite');
    const dir = join(opts.dataDir, 'pglite');
    ensurePrivateDir(opts.dataDir);
    lock = lockDataDir(opts.dataDir, dir);
    try {
      ensurePrivateDir(dir);
      client = await PGlite.create(dir);
      // PGlite sets its files' modes itself, past the umask: initdb's (the WAL included) are 0666, files
      // written later 0644. Like PostgreSQL, which refuses a data directory others can read, we keep it
      // owner-only: here, and again on close for files written meanwhile.
      restrictTree(dir);
    } catch (err) {
      lock.release();
      throw err;
    }
    describe = `pglite ${dir}`;
  }
  const pgliteClient = client;
  const heldLock = lock;
  const db = drizzlePglite(pgliteClient, { schema }) as unknown as Db;
  return {
    db,
    kind: 'pglite',
    describe,
    engine: { kind: 'pglite', client: pgliteClient },
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {
      try {
        if (!pgliteClient.closed) await pgliteClient.close();
        if (heldLock && opts.dataDir) restrictTree(join(opts.dataDir, 'pglite'));
      } finally {
        heldLock?.release();
      }
    },
  };
}
