import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** The `vocelio` binary of this checkout. */
export const BIN = join(import.meta.dirname, '../../bin/vocelio.js');

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** A running `vocelio serve` child process. */
export interface ServeProcess {
  child: ChildProcess;
  /** stdout and stderr together, in arrival order. */
  output: () => string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Extra settings for a `vocelio` child process. */
export interface ProcessOptions {
  /**
   * Variables set on top of the test's environment (minus DATABASE_URL and REDIS_URL): passing those two
   * here is how a test chooses PostgreSQL and Redis; an `undefined` value removes the variable.
   */
  env?: Record<string, string | undefined>;
}

/**
 * Starts `vocelio serve` the way a new user does: the embedded default (no DATABASE_URL or REDIS_URL, even
 * when the test run has them), only a data dir and a port, plus whatever `options.env` sets.
 */
export function serve(dataDir: string, port: number, options: ProcessOptions = {}): ServeProcess {
  return spawnVocelio(['serve'], { NODE_ENV: 'production', DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'warn', ...options.env });
}

/** Starts `vocelio worker` (it needs DATABASE_URL and REDIS_URL in `options.env`). */
export function worker(dataDir: string, options: ProcessOptions = {}): ServeProcess {
  return spawnVocelio(['worker'], { NODE_ENV: 'production', DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...options.env });
}

/** Stops a child with SIGTERM (unless it already exited) and resolves with its exit code. */
export async function stop(run: ServeProcess): Promise<number | null> {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGTERM');
  return run.exited;
}

function spawnVocelio(args: string[], overrides: Record<string, string | undefined>): ServeProcess {
  const { DATABASE_URL: _d, REDIS_URL: _r, ...inherited } = process.env;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...inherited, VOCELIO_FROM_SOURCE: '1', ...overrides })) if (v !== undefined) env[k] = v;
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Waits until `/health` answers 200; returns how long that took. */
export async function waitForHealth(port: number, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
    if (ok) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no /health within ${timeoutMs} ms`);
}

/** A finished `vocelio` command. */
export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one `vocelio` command to completion on the embedded default (no DATABASE_URL or REDIS_URL). */
export function runVocelio(args: string[], env: Record<string, string>): Promise<CommandRun> {
  const { DATABASE_URL: _d, REDIS_URL: _r, ...base } = process.env;
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...base, LOG_LEVEL: 'warn', VOCELIO_FROM_SOURCE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}
