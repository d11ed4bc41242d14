import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { AppError } from '../../shared/errors.js';
import { isValidRecordingKey, recordingKey, recordingTempDir } from './recording-store.js';
import { LocalRecordingStore } from './local-recording-store.js';
import { S3RecordingStore } from './s3-recording-store.js';
import { createRecordingStore } from './create-recording-store.js';

const KEY = 'org_01jd5z3k8m0000000000000000/call_01jd5z3k8m0000000000000000.wav';

describe('recording keys', () => {
  it('accepts the <orgId>/<callId>.wav keys the platform builds', () => {
    expect(recordingKey('org_01jd5z3k8m0000000000000000', 'call_01jd5z3k8m0000000000000000')).toBe(KEY);
    expect(isValidRecordingKey(KEY)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['parent directory', '../etc/passwd'],
    ['parent directory inside', 'org_a/../../x.wav'],
    ['absolute path', '/etc/passwd'],
    ['empty segment', 'org_a//x.wav'],
    ['trailing slash', 'org_a/'],
    ['hidden (temp) directory', '.partial/x.wav'],
    ['backslash', 'org_a\\..\\x.wav'],
    ['NUL byte', 'org_a/x\u0000.wav'],
    ['too long', `org_a/${'x'.repeat(600)}.wav`],
  ])('refuses a key with %s', (_what, key) => {
    expect(isValidRecordingKey(key)).toBe(false);
  });

  it('keeps the recorders\' temp directory out of the key space', () => {
    const tmp = recordingTempDir('/data');
    expect(tmp).toBe('/data/recordings/.partial');
    expect(isValidRecordingKey('.partial/call_x.wav')).toBe(false);
  });
});

describe('LocalRecordingStore', () => {
  let dir: string;
  let store: LocalRecordingStore;
  const audio = randomBytes(50_000);
  const tempFile = async (content: Buffer = audio) => {
    const path = join(dir, `in-${randomBytes(4).toString('hex')}.wav`);
    await writeFile(path, content);
    return path;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vocelio-store-'));
    store = new LocalRecordingStore(join(dir, 'recordings'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('moves a saved file into the store under its key', async () => {
    const from = await tempFile();
    expect(await store.save(KEY, from)).toEqual({ bytes: audio.length });
    expect(existsSync(from)).toBe(false);
    expect(existsSync(join(dir, 'recordings', KEY))).toBe(true);
  });

  it('reports the size of a stored recording and null for a missing one', async () => {
    await store.save(KEY, await tempFile());
    expect(await store.stat(KEY)).toEqual({ bytes: audio.length });
    expect(await store.stat('org_x/call_missing.wav')).toBeNull();
  });

  it('reads back the whole recording', async () => {
    await store.save(KEY, await tempFile());
    expect(await buffer(await store.read(KEY))).toEqual(audio);
  });

  it('reads an inclusive byte range', async () => {
    await store.save(KEY, await tempFile());
    expect(await buffer(await store.read(KEY, { start: 100, end: 199 }))).toEqual(audio.subarray(100, 200));
    expect(await buffer(await store.read(KEY, { start: 49_990, end: 49_999 }))).toEqual(audio.subarray(49_990));
  });

  it('answers recording_not_found when reading a missing recording', async () => {
    const err = await store.read('org_x/call_missing.wav').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'recording_not_found', status: 404 });
  });

  it('removes a recording, and removing a missing one is fine', async () => {
    await store.save(KEY, await tempFile());
    await store.remove(KEY);
    expect(await store.stat(KEY)).toBeNull();
    await expect(store.remove(KEY)).resolves.toBeUndefined();
  });

  it('replaces a recording saved again under the same key', async () => {
    await store.save(KEY, await tempFile());
    const second = randomBytes(10);
    await store.save(KEY, await tempFile(second));
    expect(await buffer(await store.read(KEY))).toEqual(second);
  });

  it('refuses keys that would leave its directory, for every operation', async () => {
    const from = await tempFile();
    await expect(store.save('../escape.wav', from)).rejects.toThrow(/invalid recording key/);
    await expect(store.stat('/etc/passwd')).rejects.toThrow(/invalid recording key/);
    await expect(store.read('a/../../b')).rejects.toThrow(/invalid recording key/);
    await expect(store.remove('..')).rejects.toThrow(/invalid recording key/);
    expect(existsSync(from)).toBe(true);
    expect(await readdir(dir)).not.toContain('escape.wav');
  });

  const shm = '/dev/shm';
  const otherDevice = existsSync(shm) && statSync(shm).dev !== statSync(tmpdir()).dev;
  it.skipIf(!otherDevice)('saves a file from another device by copying it and deleting the source', async () => {
    const from = join(shm, `vocelio-${randomBytes(4).toString('hex')}.wav`);
    await writeFile(from, audio);
    try {
      expect(await store.save(KEY, from)).toEqual({ bytes: audio.length });
      expect(existsSync(from)).toBe(false);
      expect(await buffer(await store.read(KEY))).toEqual(audio);
      expect((await readdir(join(dir, 'recordings', KEY.split('/')[0]!))).filter((f) => f.endsWith('.part'))).toEqual([]);
    } finally {
      await rm(from, { force: true });
    }
  });

  it('creates no directory until something is saved', async () => {
    const lazy = new LocalRecordingStore(join(dir, 'never'));
    expect(await lazy.stat(KEY)).toBeNull();
    await lazy.remove(KEY);
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });
});

describe('createRecordingStore', () => {
  it('stores under DATA_DIR/recordings by default', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'vocelio-data-'));
    try {
      const store = createRecordingStore({ dataDir });
      expect(store).toBeInstanceOf(LocalRecordingStore);
      const from = join(dataDir, 'x.wav');
      await writeFile(from, 'RIFF');
      await store.save(KEY, from);
      expect(existsSync(join(dataDir, 'recordings', KEY))).toBe(true);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('uses the bucket when one is configured', () => {
    const store = createRecordingStore({
      dataDir: '/nonexistent',
      recordingsS3: { endpoint: 'http://127.0.0.1:9', bucket: 'b', region: 'us-east-1', accessKeyId: 'AK', secretAccessKey: 'SK' },
    });
    expect(store).toBeInstanceOf(S3RecordingStore);
  });
});
