import type { Config } from '../config.js';
import { openDatabase } from '../db/client.js';
import { migrate } from '../db/migrate.js';

/** `vocelio migrate`: applies pending migrations and exits. */
export async function runMigrate(config: Config, _args: string[]): Promise<void> {
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrate(database);
    console.log(`migrations applied (${database.describe})`);
  } finally {
    await database.close();
  }
}
