import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runVocelio, serve, waitForHealth, type ServeProcess } from '../helpers/cli.js';

/** Every entry under `dir` (itself included) that someone other than its owner may read, write or enter. */
function widerThanOwnerOnly(dir: string): string[] {
  const found: string[] = [];
  const visit = (path: string) => {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return;
    if (st.mode & 0o077) found.push(`${path} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(dir);
  return found;
}

describe('the embedded data directory of a running server', () => {
  const root = mkdtempSync(join(tmpdir(), 'vocelio-data-'));
  const dataDir = join(root, 'data');
  let run: ServeProcess;
  let orgId = '';

  beforeAll(async () => {
    const port = await freePort();
    run = serve(dataDir, port);
    await waitForHealth(port, 30_000);
    orgId = /\((org_[0-9a-z]{26})\)/.exec(run.output())?.[1] ?? '';
  }, 60_000);
  afterAll(async () => {
    if (run.child.exitCode === null) run.child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it('creates DATA_DIR 0700 and every file the embedded database writes 0600, the WAL included', () => {
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(dataDir, 'pglite', 'pg_wal')).length).toBeGreaterThan(0);
    expect(widerThanOwnerOnly(dataDir)).toEqual([]);
  });

  it('refuses a CLI command on the same data directory while the server holds it, naming the server process', async () => {
    expect(orgId).not.toBe('');
    const keys = await runVocelio(['keys', 'list', '--org', orgId], { DATA_DIR: dataDir });
    expect(keys.code).toBe(1);
    expect(keys.stderr).toContain(`the embedded database in ${join(dataDir, 'pglite')} is in use by process ${run.child.pid} (vocelio serve`);
    expect(keys.stdout).toBe('');
  }, 30_000);

  it('lets the CLI open the data directory once the server has stopped, and leaves it owner-only', async () => {
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(existsSync(join(dataDir, 'pglite.lock'))).toBe(false);
    const keys = await runVocelio(['keys', 'list', '--org', orgId], { DATA_DIR: dataDir });
    expect(keys.stderr).toBe('');
    expect(keys.code).toBe(0);
    expect(keys.stdout).toMatch(/key_[0-9a-z]{26}/);
    expect(widerThanOwnerOnly(dataDir)).toEqual([]);
  }, 30_000);
});

describe('an existing data directory', () => {
  const root = mkdtempSync(join(tmpdir(), 'vocelio-data-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('is not blocked by the lock of a server that was killed', async () => {
    const dataDir = join(root, 'killed');
    const port = await freePort();
    const run = serve(dataDir, port);
    await waitForHealth(port, 30_000);
    const orgId = /\((org_[0-9a-z]{26})\)/.exec(run.output())?.[1] ?? '';
    run.child.kill('SIGKILL');
    await run.exited;
    expect(existsSync(join(dataDir, 'pglite.lock'))).toBe(true);
    const keys = await runVocelio(['keys', 'list', '--org', orgId], { DATA_DIR: dataDir });
    expect(keys.stderr).toBe('');
    expect(keys.code).toBe(0);
  }, 60_000);

  it('restricts an embedded database whose files others can read (an older version wrote them 0666) when it is opened', async () => {
    const dataDir = join(root, 'killed');
    const pglite = join(dataDir, 'pglite');
    const walFile = join(pglite, 'pg_wal', readdirSync(join(pglite, 'pg_wal')).find((f) => /^[0-9A-F]{24}$/.test(f))!);
    chmodSync(pglite, 0o755);
    chmodSync(walFile, 0o666);
    chmodSync(join(pglite, 'PG_VERSION'), 0o644);
    const migrate = await runVocelio(['migrate'], { DATA_DIR: dataDir });
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(widerThanOwnerOnly(pglite)).toEqual([]);
  }, 30_000);

  it('makes the server warn at start, with the chmod command, when it is readable by others', async () => {
    const dataDir = join(root, 'wide');
    mkdirSync(join(dataDir, 'recordings'), { recursive: true, mode: 0o755 });
    writeFileSync(join(dataDir, 'recordings', 'old.wav'), 'RIFF');
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, 'recordings', 'old.wav'), 0o644);
    const port = await freePort();
    const run = serve(dataDir, port);
    try {
      await waitForHealth(port, 30_000);
      const out = run.output();
      expect(out).toContain(`chmod -R go-rwx '${dataDir}'`);
      expect(out).toContain(join(dataDir, 'recordings', 'old.wav'));
    } finally {
      run.child.kill('SIGTERM');
    }
    expect(await run.exited).toBe(0);
    // A warning, not a silent change: the operator may have widened it on purpose.
    expect(statSync(dataDir).mode & 0o777).toBe(0o755);
  }, 60_000);
});
