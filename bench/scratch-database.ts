import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A database created for one benchmark run on a shared server, dropped afterwards. */
export interface ScratchDatabase {
  name: string;
  /** The server URL with this database as its path. */
  url: string;
  drop(): Promise<void>;
}

async function withAdmin<T>(serverUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates `vocelio_bench_<random>` on the server `serverUrl` points at, so the run never writes into the
 * database named there (often a shared one, such as the tests' `test`).
 */
export async function createScratchDatabase(serverUrl: string): Promise<ScratchDatabase> {
  const name = `vocelio_bench_${randomBytes(5).toString('hex')}`;
  await withAdmin(serverUrl, (c) => c.query(`create database ${name}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    // with (force): a pool connection the app failed to close must not keep the database alive.
    drop: () => withAdmin(serverUrl, (c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}
