import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { Database } from '../../src/db/client.js';
import type { Role } from '../../src/organizations/organizations.table.js';
import { bootstrapOrganization } from '../../src/organizations/bootstrap.js';
import { freshDatabase } from './database.js';
import type { MediaEngine } from '../../src/media/media-engine.js';

/** A tenant created for a test: its id, owner login and one key per role. */
export interface TestOrg {
  id: string;
  ownerEmail: string;
  ownerPassword: string;
  keys: Record<Role, string>;
}

/** The app under test plus helpers that speak to it like a client would. */
export interface TestApp {
  app: FastifyInstance;
  database: Database;
  config: Config;
  /** Creates an organization with an owner login and keys for every role. */
  createOrg(name?: string): Promise<TestOrg>;
  /** `app.inject` with a bearer key. */
  as(key: string, opts: InjectOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/**
 * Test configuration: the real loader, fed test values plus the run's DATABASE_URL/REDIS_URL. DATA_DIR is a
 * fresh temporary directory (recordings land there); the caller removes it (testApp does, on close).
 */
export function testConfig(overrides: Record<string, string> = {}): Config {
  const dataDir = mkdtempSync(join(tmpdir(), 'vocelio-test-data-'));
  return loadConfig({ NODE_ENV: 'test', PUBLIC_URL: 'https://vocelio.test', DATA_DIR: dataDir, REDIS_URL: process.env.REDIS_URL, ...overrides });
}

/** Builds the real app on a fresh database (and real Redis when REDIS_URL is set, isolated by key prefix). */
export async function testApp(env: Record<string, string> = {}, extra: { mediaEngine?: MediaEngine; now?: () => number } = {}): Promise<TestApp> {
  const config = testConfig(env);
  const database = await freshDatabase();
  const redis = config.redisUrl ? new Redis(config.redisUrl, { keyPrefix: `t${randomBytes(4).toString('hex')}:` }) : undefined;
  const app = await buildApp(config, { database, redis, mediaEngine: extra.mediaEngine, now: extra.now });
  await app.ready();

  const as = (key: string, opts: InjectOptions) =>
    app.inject({ ...opts, headers: { authorization: `Bearer ${key}`, ...(opts.headers ?? {}) } });

  let orgCount = 0;
  const createOrg = async (name = `Org ${++orgCount}`): Promise<TestOrg> => {
    const email = `owner-${randomBytes(4).toString('hex')}@example.test`;
    const password = `pw-${randomBytes(8).toString('hex')}`;
    const boot = await bootstrapOrganization(app, { organizationName: name, email, password });
    const keys: Partial<Record<Role, string>> = { owner: boot.apiKey.secret };
    for (const role of ['admin', 'member', 'viewer'] as const) {
      const res = await as(boot.apiKey.secret, { method: 'POST', url: '/v1/api-keys', payload: { name: `${role} key`, role } });
      if (res.statusCode !== 201) throw new Error(`could not create ${role} key: ${res.body}`);
      keys[role] = res.json<{ secret: string }>().secret;
    }
    return { id: boot.organization.id, ownerEmail: email, ownerPassword: password, keys: keys as Record<Role, string> };
  };

  return {
    app,
    database,
    config,
    createOrg,
    as,
    close: async () => {
      await app.close();
      await redis?.quit();
      await database.close();
      if (config.dataDir.startsWith(tmpdir())) rmSync(config.dataDir, { recursive: true, force: true });
    },
  };
}
