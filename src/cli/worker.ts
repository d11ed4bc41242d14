import type { Config } from '../config.js';
import { openRuntime, startConsumers } from '../runtime.js';
import { onShutdownSignal } from './signals.js';
import { UsageError } from './args.js';

/** `vocelio worker`: runs the job consumers until SIGTERM, then lets active jobs finish. */
export async function runWorker(config: Config, _args: string[]): Promise<void> {
  if (!config.databaseUrl || !config.redisUrl) {
    throw new UsageError('worker needs DATABASE_URL and REDIS_URL; without them, "vocelio serve" runs the workers in its own process');
  }
  const runtime = await openRuntime(config);
  const log = (msg: string) => console.log(`[worker] ${msg}`);
  const consumers = await startConsumers(runtime, config, log);
  onShutdownSignal(async () => {
    await Promise.all(consumers.map((c) => c.close()));
    await runtime.close();
    log('stopped cleanly');
  }, log);
  log(`consuming jobs (database: ${runtime.database.describe}; queue: ${runtime.queue.backend})`);
}
