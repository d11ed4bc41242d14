import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Directories under DATA_DIR: the database, recordings and voices hold tenants' data, so owner only. */
export const PRIVATE_DIR_MODE = 0o700;
/** Files under DATA_DIR. */
export const PRIVATE_FILE_MODE = 0o600;

/** Creates `dir` and any missing parents owner-only; an existing directory keeps its mode. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/** Sets every directory under `dir` (itself included) to 0700 and every file to 0600. */
export function restrictTree(dir: string): void {
  const visit = (path: string) => {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return;
    if (st.isDirectory()) {
      chmodSync(path, PRIVATE_DIR_MODE);
      for (const name of readdirSync(path)) visit(join(path, name));
    } else if ((st.mode & 0o777) !== PRIVATE_FILE_MODE) {
      chmodSync(path, PRIVATE_FILE_MODE);
    }
  };
  visit(dir);
}

/** What {@link findWidePermissions} found. */
export interface WidePermissions {
  /** Entries others may read, write or enter, with their mode in octal. */
  entries: Array<{ path: string; mode: string }>;
  /** True when the walk stopped at its limit before seeing everything. */
  truncated: boolean;
}

/**
 * Entries under `dir` (itself included) whose mode gives the group or others any access, checking at most
 * `limit` entries: recordings can number in the millions and a start-up check must stay quick.
 */
export function findWidePermissions(dir: string, limit = 20_000): WidePermissions {
  const entries: WidePermissions['entries'] = [];
  let checked = 0;
  let truncated = false;
  const visit = (path: string) => {
    if (checked >= limit) {
      truncated = true;
      return;
    }
    checked++;
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st || st.isSymbolicLink()) return;
    if (st.mode & 0o077) entries.push({ path, mode: (st.mode & 0o777).toString(8) });
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(dir);
  return { entries, truncated };
}

/** One line for the operator: what is too open, and the command that closes it. */
export function describeWidePermissions(dir: string, found: WidePermissions): string {
  const examples = found.entries.slice(0, 3).map((e) => `${e.path} (${e.mode})`).join(', ');
  const count = `${found.entries.length}${found.truncated ? '+' : ''}`;
  return `DATA_DIR ${dir} is readable or writable by other users: ${count} entries such as ${examples}; ` +
    `it holds the database, recordings and voices, so restrict it with: chmod -R go-rwx ${shellQuote(dir)}`;
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
