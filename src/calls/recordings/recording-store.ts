// Where finished call recordings live: the contract every store keeps, and the keys and ranges they share.
// The stores themselves: local-recording-store.ts (files under DATA_DIR) and s3-recording-store.ts (a bucket).
import { join } from 'node:path';
import { AppError } from '../../shared/errors.js';

/** An inclusive byte range, as HTTP's `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Stores finished recordings by key (`<orgId>/<callId>.wav`). */
export interface RecordingStore {
  /** Moves the file at `fromPath` into the store under `key` (the source is gone afterwards). */
  save(key: string, fromPath: string): Promise<{ bytes: number }>;
  /** The stored size, or null when there is no such recording. */
  stat(key: string): Promise<{ bytes: number } | null>;
  /** The recording, or the inclusive `range` of it; throws a 404 `recording_not_found` when missing. */
  read(key: string, range?: ByteRange): Promise<NodeJS.ReadableStream>;
  /** Deletes the recording; a missing one is not an error. */
  remove(key: string): Promise<void>;
}

/** 404 for a call without (or with a vanished) recording. */
export const recordingNotFound = (what = 'this call has no recording'): AppError => new AppError('recording_not_found', what, 404);

// Keys become file paths and URL paths: a small alphabet, no empty, dot-led (".", "..", hidden) or
// absolute parts, so no key can leave the store or collide with its temp directory.
const KEY_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const MAX_KEY_LENGTH = 512;

/** True for a key the stores accept: 1-8 `/`-separated parts of `[A-Za-z0-9._-]`, none starting with a dot. */
export function isValidRecordingKey(key: string): boolean {
  if (key.length === 0 || key.length > MAX_KEY_LENGTH) return false;
  const parts = key.split('/');
  return parts.length <= 8 && parts.every((p) => KEY_SEGMENT.test(p));
}

/** Throws for a key that is not a recording key: keys are built by recordingKey, so a bad one is our bug. */
export function assertRecordingKey(key: string): void {
  // Never user input: fail loudly.
  if (!isValidRecordingKey(key)) throw new Error(`invalid recording key ${JSON.stringify(key.slice(0, 100))}`);
}

/** The store key of a call's recording. */
export function recordingKey(organizationId: string, callId: string): string {
  const key = `${organizationId}/${callId}.wav`;
  assertRecordingKey(key);
  return key;
}

/** Where recorders write in-progress files: inside DATA_DIR (same device, so saving is a rename) but outside any key. */
export function recordingTempDir(dataDir: string): string {
  return join(dataDir, 'recordings', '.partial');
}

/** Throws a RangeError for a range that is not `0 <= start <= end` in whole bytes. */
export function assertByteRange(range: ByteRange): void {
  if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end < range.start) {
    throw new RangeError(`invalid byte range ${range.start}-${range.end}`);
  }
}
