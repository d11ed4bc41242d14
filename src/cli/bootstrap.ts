import type { Config } from '../config.js';
import { openDatabase } from '../db/client.js';
import { migrate } from '../db/migrate.js';
import { bootstrapBanner, bootstrapOrganization } from '../organizations/bootstrap.js';
import { parseCommandArgs, UsageError } from './args.js';
import { cliServices } from './services.js';

/** `vocelio bootstrap --org <name> --email <email> [--password <pw>]`: a new organization with an owner and a key. */
export async function runBootstrap(config: Config, args: string[]): Promise<void> {
  const { values } = parseCommandArgs(args, { org: { type: 'string' }, email: { type: 'string' }, password: { type: 'string' } });
  const organizationName = values.org?.trim() || 'My organization';
  const email = values.email?.trim() || config.bootstrapEmail;
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new UsageError(`--email "${email}" is not an email address`);
  if (values.password !== undefined && values.password.length < 12) throw new UsageError('--password must be at least 12 characters');
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrate(database);
    const result = await bootstrapOrganization(cliServices(database.db), { organizationName, email, password: values.password });
    console.log(bootstrapBanner(result, config.publicUrl));
  } finally {
    await database.close();
  }
}
