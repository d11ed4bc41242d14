import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPostgresUrl } from '../helpers/database.js';
import { BIN } from '../helpers/cli.js';


interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one vocelio command to completion (or until `until` appears in stdout, then SIGTERM). */
function vocelio(args: string[], env: Record<string, string | undefined>, until?: string): Promise<Run> {
  const { DATABASE_URL: _d, REDIS_URL: _r, ...base } = process.env;
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...base, LOG_LEVEL: 'warn', VOCELIO_FROM_SOURCE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let signalled = false;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (until && !signalled && stdout.includes(until)) {
      signalled = true;
      child.kill('SIGTERM');
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('vocelio bootstrap and keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vocelio-cmd-'));
  const env = { DATA_DIR: dir };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('bootstraps an organization, then creates, lists and revokes a key for it', async () => {
    const boot = await vocelio(['bootstrap', '--org', 'Acme', '--email', 'ops@acme.test', '--password', 'correct horse battery'], env);
    expect(boot.code).toBe(0);
    const orgId = /\((org_[0-9a-z]{26})\)/.exec(boot.stdout)?.[1];
    expect(orgId).toBeDefined();

    const created = await vocelio(['keys', 'create', '--org', orgId!, '--name', 'ci', '--role', 'viewer', '--scope', 'agents:read'], env);
    expect(created.code).toBe(0);
    const keyId = /created (key_[0-9a-z]{26})/.exec(created.stdout)?.[1];
    expect(created.stdout).toMatch(/vk_[A-Za-z0-9_-]{40}/);

    const revoked = await vocelio(['keys', 'revoke', keyId!, '--org', orgId!], env);
    expect(revoked.code).toBe(0);
    const listed = await vocelio(['keys', 'list', '--org', orgId!], env);
    expect(listed.stdout).toMatch(new RegExp(`${keyId}.*revoked`));
  }, 60_000);

  it('exits 2 with a hint on a usage mistake', async () => {
    const run = await vocelio(['keys', 'list'], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--org <org_id> is required');
  }, 30_000);
});

describe.skipIf(!process.env.DATABASE_URL || !process.env.REDIS_URL)('vocelio worker on PostgreSQL and Redis', () => {
  it('migrates, consumes jobs, and stops cleanly on SIGTERM', async () => {
    const db = await freshPostgresUrl();
    try {
      const run = await vocelio(['worker'], { DATABASE_URL: db.url, REDIS_URL: process.env.REDIS_URL }, 'consuming jobs');
      expect(run.stdout).toContain('queue: bullmq');
      expect(run.stdout).toContain('stopped cleanly');
      expect(run.code).toBe(0);
    } finally {
      await db.drop();
    }
  }, 60_000);
});

describe('vocelio worker without PostgreSQL and Redis', () => {
  it('explains that serve runs the workers on the embedded default', async () => {
    const run = await vocelio(['worker'], { DATA_DIR: tmpdir() });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('worker needs DATABASE_URL and REDIS_URL');
  }, 30_000);
});
