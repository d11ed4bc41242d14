import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, parseSecretsKey, type Config } from '../config.js';
import { keyIdOf } from './secret-box.js';

/** The file under `DATA_DIR` that holds the generated key when `SECRETS_KEY` is unset. */
export const SECRETS_KEY_FILE = 'secrets.key';

/** The key tool secrets are encrypted with, where it came from, and what the operator should know. */
export interface SecretsKey {
  key: Uint8Array;
  keyId: string;
  /** `SECRETS_KEY`, or the path of the key file. */
  source: string;
  /** True when this start generated the key file. */
  created: boolean;
  warnings: string[];
}

/**
 * `SECRETS_KEY` when set; otherwise the key in `DATA_DIR/secrets.key`, generated on first start (directory
 * 0700, file 0600). Several processes starting at once agree on one file: it is written aside and linked into
 * place, which fails for all but the first.
 */
export function loadSecretsKey(config: Pick<Config, 'secretsKey' | 'dataDir' | 'databaseUrl'>): SecretsKey {
  if (config.secretsKey) return { key: config.secretsKey, keyId: keyIdOf(config.secretsKey), source: 'SECRETS_KEY', created: false, warnings: [] };
  const path = join(config.dataDir, SECRETS_KEY_FILE);
  const created = createKeyFile(config.dataDir, path);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('SECRETS_KEY', `is unset and ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const key = parseSecretsKey(text);
  if (!key) throw new ConfigError('SECRETS_KEY', `is unset and ${path} does not hold a 32-byte key (base64 or hex); restore the file from a backup or set SECRETS_KEY`);
  const warnings: string[] = [];
  if ((statSync(path).mode & 0o077) !== 0) warnings.push(`${path} is readable by other users: chmod 600 ${path}`);
  if (config.databaseUrl) {
    warnings.push(
      `SECRETS_KEY is not set: tool secrets are encrypted with the key in ${path}, which only this node has. ` +
        'Every serve node on the same database needs the same key: set SECRETS_KEY (e.g. to the contents of that file) on all of them.',
    );
  }
  return { key, keyId: keyIdOf(key), source: path, created, warnings };
}

function createKeyFile(dir: string, path: string): boolean {
  if (existsSync(path)) return false;
  const fail = (err: unknown) => new ConfigError('SECRETS_KEY', `is unset and no key file could be created in ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  const aside = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(aside, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    throw fail(err);
  }
  try {
    linkSync(aside, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw fail(err);
  } finally {
    unlinkSync(aside);
  }
}
