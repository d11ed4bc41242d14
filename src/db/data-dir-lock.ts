import { closeSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PRIVATE_FILE_MODE } from '../shared/data-dir.js';

/** Who holds a data directory: written into the lock file. */
export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
}

/** Another live process has the embedded database open; the message names it. */
export class DataDirLockedError extends Error {
  constructor(
    readonly databaseDir: string,
    readonly holder: LockHolder,
    readonly lockPath: string,
  ) {
    const where = holder.host === hostname() ? '' : ` on ${holder.host}`;
    super(
      `the embedded database in ${databaseDir} is in use by process ${holder.pid} (vocelio ${holder.command}${where}, since ${holder.startedAt}); ` +
        `stop it first, or use that server's API. If no such process exists, delete ${lockPath}`,
    );
    this.name = 'DataDirLockedError';
  }
}

/** A held lock; `release` is idempotent. */
export interface DataDirLock {
  readonly path: string;
  release(): void;
}

const LOCK_FILE = 'pglite.lock';
// Locks this process holds: a lock file with our own pid is either one of these or left by an earlier
// process that had the same pid (a container's pid 1 after a restart), which is stale.
const heldHere = new Set<string>();

/**
 * Takes `<dataDir>/pglite.lock` for this process, or throws DataDirLockedError naming the live holder. PGlite
 * is one process's database: a second opener (a CLI command next to a running server) would corrupt it.
 * A lock whose process is gone (killed, crashed) is stale and taken over. The lock is written whole to a
 * temporary file and linked into place, so no reader ever sees a half-written one.
 */
export function lockDataDir(dataDir: string, databaseDir: string): DataDirLock {
  const path = join(dataDir, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: hostname(), command: commandName(), startedAt: new Date().toISOString() };
  const temp = join(dataDir, `.${LOCK_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
  const fd = openSync(temp, 'wx', PRIVATE_FILE_MODE);
  try {
    writeSync(fd, `${JSON.stringify(me)}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(temp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = readHolder(path);
      if (holder && (heldHere.has(path) || (holder.pid !== process.pid && isAlive(holder)))) throw new DataDirLockedError(databaseDir, holder, path);
      if (attempt >= 3) throw new Error(`cannot take ${path}: it keeps reappearing`);
      // Stale: its process is gone. Remove it and try again (another process may win the race; then it holds).
      try {
        unlinkSync(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  } finally {
    unlinkSync(temp);
  }

  heldHere.add(path);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    heldHere.delete(path);
    process.off('exit', release);
    // Only our own lock: if it was taken over as stale meanwhile, it is someone else's now.
    if (readHolder(path)?.pid === process.pid) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
  };
  // process.exit() skips `finally` blocks and close(); the lock must not outlive the process that way.
  process.on('exit', release);
  return { path, release };
}

function readHolder(path: string): LockHolder | null {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder>;
    if (typeof parsed.pid !== 'number' || typeof parsed.host !== 'string') return null;
    return { pid: parsed.pid, host: parsed.host, command: String(parsed.command ?? '?'), startedAt: String(parsed.startedAt ?? '?') };
  } catch {
    return null;
  }
}

function isAlive(holder: LockHolder): boolean {
  // A process on another machine (a shared volume) cannot be checked from here: assume it runs.
  if (holder.host !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// The subcommand only: the rest of the command line may hold a password.
const commandName = (): string => process.argv[2]?.replace(/[^a-z-]/g, '') || 'process';
