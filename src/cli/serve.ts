import { existsSync } from 'node:fs';
import type { Config } from '../config.js';
import { describeWidePermissions, findWidePermissions } from '../shared/data-dir.js';
import { buildApp } from '../app.js';
import { openRuntime, startConsumers } from '../runtime.js';
import { MediaWorkerPool } from '../media/workers/media-worker-pool.js';
import { bootstrapBanner, bootstrapOrganization } from '../organizations/bootstrap.js';
import { onShutdownSignal } from './signals.js';
import { parseCommandArgs } from './args.js';

/** `vocelio serve`: migrate, bootstrap an empty database, listen; embedded mode also runs the consumers. */
export async function runServe(config: Config, args: string[]): Promise<void> {
  const { values } = parseCommandArgs(args, { port: { type: 'string' } });
  const port = values.port ? Number(values.port) : config.port;
  const embedded = !config.databaseUrl || !config.redisUrl;
  const runtime = await openRuntime(config);
  // The embedded database directory is restricted when opened; anything else too open (DATA_DIR itself,
  // recordings, voices) may be the operator's choice, so it is reported, not changed.
  const tooOpen = existsSync(config.dataDir) ? findWidePermissions(config.dataDir) : null;
  const mediaEngine = await MediaWorkerPool.start({ voicesDir: config.voicesDir, onLog: (msg) => console.error(msg) });
  const app = await buildApp(config, { database: runtime.database, queue: runtime.queue, mediaEngine, eventFeed: runtime.eventFeed, exclusiveNode: !config.databaseUrl });
  const log = (msg: string) => app.log.info(msg);
  app.log.info(`database: ${runtime.database.describe}; queue: ${runtime.queue.backend}`);
  // Rows from before tool secrets were encrypted get sealed once; other nodes running it too change nothing.
  const secrets = await app.agents.sealStoredSecrets();
  if (secrets.sealed > 0) app.log.info(`encrypted ${secrets.sealed} tool header values stored in plain text`);
  if (secrets.unreadable > 0) {
    app.log.error(`${secrets.unreadable} tool header values were encrypted with another key (${secrets.foreignKeyIds.join(', ')}); calls using them fail until SECRETS_KEY is that key`);
  }
  if (tooOpen && tooOpen.entries.length > 0) app.log.warn(describeWidePermissions(config.dataDir, tooOpen));

  if (config.autoBootstrap && (await app.organizations.isEmpty())) {
    const result = await bootstrapOrganization(app, { organizationName: 'My organization', email: config.bootstrapEmail });
    // To the terminal (stderr), never the log stream: stdout carries the JSON logs that shippers collect,
    // and they must never receive the owner key.
    process.stderr.write(`\n${bootstrapBanner(result, config.publicUrl)}\n\n`);
  }

  const consumers = embedded ? await startConsumers(runtime, config, log) : [];
  // Lifecycle lines go to stdout whatever LOG_LEVEL says: an operator must see the process stop.
  onShutdownSignal(async () => {
    await app.close();
    await mediaEngine.close();
    await Promise.all(consumers.map((c) => c.close()));
    await runtime.close();
    process.stdout.write('Vocelio stopped cleanly\n');
  }, (msg) => process.stdout.write(`${msg}\n`));

  await app.listen({ port, host: config.host });
  process.stdout.write(`Vocelio ${embedded ? '(embedded: PGlite/in-process queue where not configured) ' : ''}listening on ${config.publicUrl} (port ${port}); API docs at ${config.publicUrl}/docs\n`);
}
