import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../config.js';
import { SecretBox, SecretKeyError, keyIdOf } from './secret-box.js';
import { SECRETS_KEY_FILE, loadSecretsKey } from './secrets-key.js';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('seals to enc:v1:<keyId>:<base64>, a new ciphertext each time, and opens it again', () => {
    const a = box.seal('Bearer top-secret');
    const b = box.seal('Bearer top-secret');
    expect(a).toMatch(new RegExp(`^enc:v1:${box.keyId}:[A-Za-z0-9+/]+=*$`));
    expect(a).not.toBe(b);
    expect(a).not.toContain('top-secret');
    expect(box.open(a)).toBe('Bearer top-secret');
    expect(box.open(box.seal(''))).toBe('');
    expect(box.open(box.seal('ünïcødé ✓'))).toBe('ünïcødé ✓');
  });

  it('passes plain text from before encryption through', () => {
    expect(box.open('Bearer legacy')).toBe('Bearer legacy');
    expect(SecretBox.isSealed('Bearer legacy')).toBe(false);
  });

  it('refuses a value sealed with another key, naming both key ids', () => {
    const other = new SecretBox(randomBytes(32));
    const sealed = other.seal('x');
    expect(() => box.open(sealed)).toThrow(SecretKeyError);
    expect(() => box.open(sealed)).toThrow(`a stored secret was encrypted with key ${other.keyId}, but this server's key is ${box.keyId}: set SECRETS_KEY to the key that encrypted it`);
  });

  it('refuses an altered or relabelled value', () => {
    const sealed = box.seal('hello');
    const data = Buffer.from(sealed.split(':')[3]!, 'base64');
    data[data.length - 1]! ^= 1;
    expect(() => box.open(`enc:v1:${box.keyId}:${data.toString('base64')}`)).toThrow(/does not decrypt/);
    expect(() => box.open('enc:v1:zz:abc')).toThrow(/damaged/);
  });

  it('needs a 32-byte key', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(/32 bytes/);
  });
});

describe('the secrets key', () => {
  const dirs: string[] = [];
  const dataDir = () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'vocelio-key-')), 'data');
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(join(d, '..'), { recursive: true, force: true });
  });

  it('reads SECRETS_KEY as base64, base64url or hex', () => {
    const key = randomBytes(32);
    for (const text of [key.toString('base64'), key.toString('base64url'), key.toString('hex'), key.toString('hex').toUpperCase()]) {
      expect(Buffer.from(loadConfig({ SECRETS_KEY: text }).secretsKey!)).toEqual(key);
    }
  });

  it.each([['too short', randomBytes(16).toString('base64')], ['too long', randomBytes(33).toString('base64')], ['not base64', '!'.repeat(44)], ['a passphrase', 'correct horse battery staple']])(
    'refuses a SECRETS_KEY that is %s with a ConfigError naming the variable',
    (_what, value) => {
      let err: unknown;
      try {
        loadConfig({ SECRETS_KEY: value });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe('SECRETS_KEY');
      expect((err as Error).message).toMatch(/^SECRETS_KEY: must be 32 bytes written as base64 \(openssl rand -base64 32\) or 64 hex characters/);
      expect((err as Error).message).not.toContain(value);
    },
  );

  it('uses SECRETS_KEY when set and writes no file', () => {
    const key = randomBytes(32);
    const dir = dataDir();
    expect(loadSecretsKey({ secretsKey: key, dataDir: dir, databaseUrl: 'postgres://db/x' })).toMatchObject({ keyId: keyIdOf(key), source: 'SECRETS_KEY', created: false, warnings: [] });
    expect(() => statSync(dir)).toThrow();
  });

  it('generates a key into DATA_DIR on first start (directory 0700, file 0600) and reuses it', () => {
    const dir = dataDir();
    const first = loadSecretsKey({ dataDir: dir });
    expect(first).toMatchObject({ created: true, source: join(dir, SECRETS_KEY_FILE), warnings: [] });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, SECRETS_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(Buffer.from(readFileSync(join(dir, SECRETS_KEY_FILE), 'utf8').trim(), 'base64')).toEqual(Buffer.from(first.key));
    const again = loadSecretsKey({ dataDir: dir });
    expect(again).toMatchObject({ created: false, keyId: first.keyId });
  });

  it('warns when several nodes could share a database without sharing the key, and when the file is readable by others', () => {
    const dir = dataDir();
    loadSecretsKey({ dataDir: dir });
    chmodSync(join(dir, SECRETS_KEY_FILE), 0o644);
    const { warnings } = loadSecretsKey({ dataDir: dir, databaseUrl: 'postgres://db/x' });
    expect(warnings).toEqual([
      `${join(dir, SECRETS_KEY_FILE)} is readable by other users: chmod 600 ${join(dir, SECRETS_KEY_FILE)}`,
      expect.stringMatching(/^SECRETS_KEY is not set: .*Every serve node on the same database needs the same key/),
    ]);
  });

  it('refuses a damaged key file with a clear error instead of making a new key', () => {
    const dir = dataDir();
    loadSecretsKey({ dataDir: dir });
    writeFileSync(join(dir, SECRETS_KEY_FILE), 'garbage\n');
    expect(() => loadSecretsKey({ dataDir: dir })).toThrow(ConfigError);
    expect(() => loadSecretsKey({ dataDir: dir })).toThrow(`SECRETS_KEY: is unset and ${join(dir, SECRETS_KEY_FILE)} does not hold a 32-byte key (base64 or hex); restore the file from a backup or set SECRETS_KEY`);
  });
});
