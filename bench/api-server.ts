import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/app.js';
import { MediaWorkerPool } from '../src/media/workers/media-worker-pool.js';
import { openRuntime, startConsumers } from '../src/runtime.js';
import { bootstrapOrganization } from '../src/organizations/bootstrap.js';
import { createScratchDatabase } from './scratch-database.js';

/** Which engines served the run. */
export interface Backends {
  database: 'pglite' | 'postgres';
  /** Where, without credentials. */
  databaseDetail: string;
  queue: 'in-process' | 'bullmq';
  rateLimiter: 'memory' | 'redis';
  /** Embedded `serve` also runs the job consumers in the same process. */
  consumersInProcess: boolean;
}

/** The real app, listening on a loopback port, with one organization and some agents. */
export interface BenchServer {
  baseUrl: string;
  /** The app itself, for what the benchmark reads in-process (call latencies, live sessions). */
  app: FastifyInstance;
  organizationId: string;
  ownerKey: string;
  agentIds: string[];
  backends: Backends;
  /** The media worker pool, when the options asked for one. */
  pool: MediaWorkerPool | null;
  /** Closes the app, the pool, consumers and runtime, drops the scratch database and removes the temp dir. */
  close(): Promise<void>;
}

/** Options of {@link startBenchServer}; the URLs come from the environment, as for `vocelio serve`. */
export interface BenchServerOptions {
  databaseUrl?: string;
  redisUrl?: string;
  agents: number;
  /** Start a media worker pool, as `vocelio serve` does (size: default cores - 1); omitted: no media engine. */
  media?: { workers?: number; voicesDir?: string };
  /** More configuration variables, as `vocelio serve` reads them from the environment (provider keys and URLs). */
  env?: Record<string, string>;
  log(msg: string): void;
}

/** Runs each cleanup step in reverse order of setup; one failing step does not skip the others. */
class Cleanup {
  private readonly steps: Array<{ what: string; run: () => Promise<unknown> }> = [];
  add(what: string, run: () => Promise<unknown>): void {
    this.steps.push({ what, run });
  }
  async run(log: (msg: string) => void): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.run();
      } catch (err) {
        log(`cleanup: ${step.what} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

/**
 * Builds the app the way `vocelio serve` does (src/cli/serve.ts): open the runtime (migrations
 * included), build the app, bootstrap an organization, start the consumers when embedded, listen.
 */
export async function startBenchServer(opts: BenchServerOptions): Promise<BenchServer> {
  const cleanup = new Cleanup();
  try {
    const dataDir = await mkdtemp(join(tmpdir(), 'vocelio-bench-'));
    cleanup.add('remove temp dir', () => rm(dataDir, { recursive: true, force: true }));

    let databaseUrl: string | undefined;
    let databaseDetail = `PGlite (embedded), data in a temp dir`;
    if (opts.databaseUrl) {
      const scratch = await createScratchDatabase(opts.databaseUrl);
      cleanup.add(`drop database ${scratch.name}`, () => scratch.drop());
      databaseUrl = scratch.url;
      const u = new URL(opts.databaseUrl);
      databaseDetail = `PostgreSQL at ${u.hostname}:${u.port || 5432}, scratch database ${scratch.name} (dropped afterwards)`;
    }

    const config = loadConfig({
      ...opts.env,
      // The pool and the agents' checks must look for Piper voices in the same place.
      ...(opts.media?.voicesDir ? { VOICES_DIR: opts.media.voicesDir } : {}),
      DATA_DIR: dataDir,
      DATABASE_URL: databaseUrl,
      REDIS_URL: opts.redisUrl,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'silent',
      // The limiter still runs (its cost is part of every request), but must never answer 429 here.
      RATE_LIMIT_PER_MINUTE: '1000000',
      // Every simulated caller comes from 127.0.0.1; a loaded server may hold more than the per-address
      // default of media sockets waiting for their start, which would refuse callers with 503.
      MEDIA_PENDING_SOCKETS_PER_ADDRESS: '1000',
      MEDIA_PENDING_SOCKETS_MAX: '1000',
    });
    const embedded = !config.databaseUrl || !config.redisUrl;
    const runtime = await openRuntime(config);
    cleanup.add('close runtime', () => runtime.close());
    let pool: MediaWorkerPool | null = null;
    if (opts.media) {
      pool = await MediaWorkerPool.start({ size: opts.media.workers, voicesDir: opts.media.voicesDir, onLog: opts.log });
      const started = pool;
      // Added before the app, so it closes after it: closing the app ends the live calls first, as serve does.
      cleanup.add('close media worker pool', () => started.close());
    }
    const app = await buildApp(config, { database: runtime.database, queue: runtime.queue, ...(pool ? { mediaEngine: pool } : {}) });
    cleanup.add('close app', () => app.close());

    const boot = await bootstrapOrganization(app, { organizationName: 'Benchmark organization', email: config.bootstrapEmail });
    const consumers = embedded ? await startConsumers(runtime, config, opts.log) : [];
    cleanup.add('close consumers', () => Promise.all(consumers.map((c) => c.close())));

    await app.listen({ port: 0, host: config.host });
    const { port } = app.server.address() as AddressInfo;

    const agentIds: string[] = [];
    for (let i = 0; i < opts.agents; i++) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: { authorization: `Bearer ${boot.apiKey.secret}` },
        payload: { name: `Seed agent ${i + 1}`, systemPrompt: 'You are the receptionist of {{company}}.', variables: { company: 'Acme' } },
      });
      if (res.statusCode !== 201) throw new Error(`creating seed agent ${i + 1} failed: ${res.statusCode} ${res.body}`);
      agentIds.push(res.json<{ id: string }>().id);
    }

    return {
      baseUrl: `http://127.0.0.1:${port}`,
      app,
      organizationId: boot.organization.id,
      ownerKey: boot.apiKey.secret,
      agentIds,
      backends: {
        database: runtime.database.kind,
        databaseDetail,
        queue: runtime.queue.backend,
        rateLimiter: app.rateLimiter.backend,
        consumersInProcess: embedded,
      },
      pool,
      close: () => cleanup.run(opts.log),
    };
  } catch (err) {
    await cleanup.run(opts.log);
    throw err;
  }
}
