// Prepares one migrated database template per test run, so every test file starts from a fresh copy
// without paying for initdb and migrations again, and prints which backends the run uses.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../src/db/client.js';
import { migrate } from '../src/db/migrate.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Postgres: the template database name. PGlite: the path of a dumped, migrated data dir. */
    dbTemplate: { kind: 'postgres'; name: string; runTag: string } | { kind: 'pglite'; dumpPath: string };
  }
}

export default async function setup(project: TestProject) {
  const databaseUrl = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  console.log(
    `\n[vocelio tests] database: ${databaseUrl ? `PostgreSQL (${new URL(databaseUrl).host})` : 'PGlite (embedded)'}; ` +
      `queue & rate limits: ${redisUrl ? `BullMQ/Redis (${new URL(redisUrl).host})` : 'in-process'}\n`,
  );

  if (databaseUrl) {
    // Several runs may share one server (CI, parallel checkouts): everything this run creates carries its pid.
    const runTag = String(process.pid);
    const name = `vocelio_tpl_${runTag}_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    const url = new URL(databaseUrl);
    url.pathname = `/${name}`;
    const database = await openDatabase({ databaseUrl: url.toString(), poolSize: 1 });
    await migrate(database);
    await database.close();
    project.provide('dbTemplate', { kind: 'postgres', name, runTag });
    return async () => {
      // Test files drop their own copies. A crashed run may leave some: sweep this run's, and those of runs
      // whose process is gone, never those of a run still going.
      const { rows } = await admin.query<{ datname: string }>(`select datname from pg_database where datname ~ '^vocelio_(t|tpl)_[0-9]+_'`);
      for (const r of rows) {
        const pid = Number(/^vocelio_(?:t|tpl)_(\d+)_/.exec(r.datname)?.[1]);
        if (pid !== process.pid && processAlive(pid)) continue;
        await admin.query(`drop database if exists ${r.datname} with (force)`).catch(() => {});
      }
      await admin.end();
    };
  }

  const dir = mkdtempSync(join(tmpdir(), 'vocelio-test-'));
  const client = await PGlite.create();
  const database = await openDatabase({ pglite: client });
  await migrate(database);
  const dump = await client.dumpDataDir('none');
  const dumpPath = join(dir, 'template.tar');
  writeFileSync(dumpPath, Buffer.from(await dump.arrayBuffer()));
  await database.close();
  project.provide('dbTemplate', { kind: 'pglite', dumpPath });
  return () => rmSync(dir, { recursive: true, force: true });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
