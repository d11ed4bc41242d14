// Recordings as files under DATA_DIR/recordings (the default store).
import { copyFile, mkdir, open, rename, stat as fsStat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, resolve, sep } from 'node:path';
import { assertByteRange, assertRecordingKey, recordingNotFound, type ByteRange, type RecordingStore } from './recording-store.js';

const isErrno = (err: unknown, code: string): boolean => (err as NodeJS.ErrnoException | null)?.code === code;

/** Recordings as files under one directory (`DATA_DIR/recordings`). */
export class LocalRecordingStore implements RecordingStore {
  private readonly root: string;

  constructor(dir: string) {
    this.root = resolve(dir);
  }

  /** The file of a key; the key check already keeps it inside the root, this makes sure of it. */
  private pathOf(key: string): string {
    assertRecordingKey(key);
    const path = resolve(this.root, ...key.split('/'));
    if (!path.startsWith(this.root + sep)) throw new Error(`recording key escapes the store: ${key}`);
    return path;
  }

  /** Moves the file in: a rename on the same device, else copy then rename, so readers never see half a file. */
  async save(key: string, fromPath: string): Promise<{ bytes: number }> {
    const dest = this.pathOf(key);
    await mkdir(dirname(dest), { recursive: true, mode: 0o700 });
    try {
      await rename(fromPath, dest);
    } catch (err) {
      if (!isErrno(err, 'EXDEV')) throw err;
      const part = `${dest}.${randomBytes(6).toString('hex')}.part`;
      try {
        await copyFile(fromPath, part);
        await rename(part, dest);
      } catch (copyErr) {
        await unlink(part).catch(() => {});
        throw copyErr;
      }
      await unlink(fromPath).catch(() => {});
    }
    return { bytes: (await fsStat(dest)).size };
  }

  /** The file's size, or null. */
  async stat(key: string): Promise<{ bytes: number } | null> {
    try {
      const s = await fsStat(this.pathOf(key));
      return s.isFile() ? { bytes: s.size } : null;
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
      throw err;
    }
  }

  /** Opens the file first so a missing recording is a 404 here, not an error event mid-response. */
  async read(key: string, range?: ByteRange): Promise<NodeJS.ReadableStream> {
    if (range) assertByteRange(range);
    const path = this.pathOf(key);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) throw recordingNotFound('the recording file is missing');
      throw err;
    }
    return handle.createReadStream({ start: range?.start, end: range?.end });
  }

  /** Deletes the file; already gone is fine. */
  async remove(key: string): Promise<void> {
    try {
      await unlink(this.pathOf(key));
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err;
    }
  }
}
