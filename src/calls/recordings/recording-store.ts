// Where finished call recordings live: a directory under DATA_DIR by default, or an S3-compatible bucket
// (AWS S3, MinIO, R2, ...) spoken to with plain fetch and Signature V4, so no SDK is needed for four calls.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, rename, stat as fsStat, unlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { AppError, ProviderError } from '../../shared/errors.js';
import { ConfigError } from '../../config.js';

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

function assertKey(key: string): void {
  // A bad key is our bug (keys are built by recordingKey), never user input: fail loudly.
  if (!isValidRecordingKey(key)) throw new Error(`invalid recording key ${JSON.stringify(key.slice(0, 100))}`);
}

/** The store key of a call's recording. */
export function recordingKey(organizationId: string, callId: string): string {
  const key = `${organizationId}/${callId}.wav`;
  assertKey(key);
  return key;
}

/** Where recorders write in-progress files: inside DATA_DIR (same device, so saving is a rename) but outside any key. */
export function recordingTempDir(dataDir: string): string {
  return join(dataDir, 'recordings', '.partial');
}

function assertRange(range: ByteRange): void {
  if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end < range.start) {
    throw new RangeError(`invalid byte range ${range.start}-${range.end}`);
  }
}

const isErrno = (err: unknown, code: string): boolean => (err as NodeJS.ErrnoException | null)?.code === code;

/** Recordings as files under one directory (`DATA_DIR/recordings`). */
export class LocalRecordingStore implements RecordingStore {
  private readonly root: string;

  constructor(dir: string) {
    this.root = resolve(dir);
  }

  /** The file of a key; the key check already keeps it inside the root, this makes sure of it. */
  private pathOf(key: string): string {
    assertKey(key);
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
    if (range) assertRange(range);
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

/** An S3-compatible bucket. */
export interface S3Settings {
  /** Base URL of the service, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://minio:9000`; objects are addressed path-style. */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials' session token, if any. */
  sessionToken?: string;
}

/** AWS credentials for signing. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** A request to sign: every header in `headers` is signed (plus `host`, `x-amz-date`, `x-amz-content-sha256`). */
export interface SignableRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`. */
  payloadHash: string;
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** RFC 3986 encoding as SigV4 wants it (encodeURIComponent leaves `!'()*` alone). */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256Hex = (data: string): string => createHash('sha256').update(data, 'utf8').digest('hex');

/** `20130524T000000Z`, SigV4's timestamp format. */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * Signs a request for S3 with AWS Signature Version 4 (header form). Returns the headers to send: the given
 * ones plus `x-amz-date`, `x-amz-content-sha256`, `authorization` (and `x-amz-security-token`). `host` is
 * signed from the URL and left for fetch to send.
 */
export function signS3Request(req: SignableRequest, credentials: AwsCredentials, region: string, date: Date): Record<string, string> {
  const stamp = amzDate(date);
  const day = stamp.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
  headers['x-amz-date'] = stamp;
  headers['x-amz-content-sha256'] = req.payloadHash;
  if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;

  const signed: Record<string, string> = { ...headers, host: req.url.host };
  const names = Object.keys(signed).sort();
  const canonicalHeaders = names.map((n) => `${n}:${signed[n]!.trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = names.join(';');
  const query = [...req.url.searchParams.entries()]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  // S3 signs the path as sent, each segment encoded once (no double encoding, unlike other services).
  const path = req.url.pathname.split('/').map((s) => uriEncode(decodeURIComponent(s))).join('/') || '/';
  const canonicalRequest = [req.method.toUpperCase(), path, query, canonicalHeaders, signedHeaders, req.payloadHash].join('\n');

  const scope = `${day}/${region}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', stamp, scope, sha256Hex(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Recordings as objects in an S3-compatible bucket, path-style: `<endpoint>/<bucket>/<key>`. */
export class S3RecordingStore implements RecordingStore {
  private readonly base: string;

  constructor(
    private readonly settings: S3Settings,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.base = `${settings.endpoint.replace(/\/+$/, '')}/${uriEncode(settings.bucket)}`;
  }

  private urlOf(key: string): URL {
    assertKey(key);
    return new URL(`${this.base}/${key.split('/').map(uriEncode).join('/')}`);
  }

  private async send(method: string, key: string, init: { headers?: Record<string, string>; payloadHash?: string; body?: ReadableStream<Uint8Array> | WebReadableStream<Uint8Array> } = {}): Promise<Response> {
    const url = this.urlOf(key);
    const headers = signS3Request({ method, url, headers: init.headers, payloadHash: init.payloadHash ?? EMPTY_SHA256 }, this.settings, this.settings.region, this.now());
    try {
      return await fetch(url, { method, headers, body: init.body as ReadableStream<Uint8Array> | undefined, duplex: init.body ? 'half' : undefined } as RequestInit);
    } catch (err) {
      throw new ProviderError('s3', `${method} ${url.pathname} failed: ${(err as Error).message}`, true, undefined, { cause: err });
    }
  }

  private async failure(res: Response, what: string): Promise<ProviderError> {
    const text = await res.text().catch(() => '');
    // S3 errors are XML with a <Code>; that is the useful part, and it carries no secrets.
    const code = /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1];
    return new ProviderError('s3', `${what}: HTTP ${res.status}${code ? ` ${code}` : ''}`, ProviderError.isRetryableStatus(res.status), res.status);
  }

  /** Uploads the file with a signed payload hash (one extra read of the file), then deletes the local copy. */
  async save(key: string, fromPath: string): Promise<{ bytes: number }> {
    const { size } = await fsStat(fromPath);
    const payloadHash = await fileSha256(fromPath);
    const body = Readable.toWeb(createReadStream(fromPath)) as WebReadableStream<Uint8Array>;
    const res = await this.send('PUT', key, { headers: { 'content-length': String(size), 'content-type': 'audio/wav' }, payloadHash, body });
    if (!res.ok) throw await this.failure(res, `upload of ${key}`);
    await res.body?.cancel();
    await unlink(fromPath).catch(() => {});
    return { bytes: size };
  }

  /** HEAD of the object: its size, or null on 404. */
  async stat(key: string): Promise<{ bytes: number } | null> {
    const res = await this.send('HEAD', key);
    await res.body?.cancel();
    if (res.status === 404) return null;
    if (!res.ok) throw await this.failure(res, `stat of ${key}`);
    return { bytes: Number(res.headers.get('content-length') ?? 0) };
  }

  /** GET of the object (with `Range` when asked), streamed through. */
  async read(key: string, range?: ByteRange): Promise<NodeJS.ReadableStream> {
    if (range) assertRange(range);
    const res = await this.send('GET', key, { headers: range ? { range: `bytes=${range.start}-${range.end}` } : {} });
    if (res.status === 404) {
      await res.body?.cancel();
      throw recordingNotFound('the recording object is missing');
    }
    if (!(range ? res.status === 206 : res.status === 200) || !res.body) throw await this.failure(res, `read of ${key}`);
    return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  }

  /** DELETE of the object; S3 answers 204 for a missing key too. */
  async remove(key: string): Promise<void> {
    const res = await this.send('DELETE', key);
    await res.body?.cancel();
    if (!res.ok && res.status !== 404) throw await this.failure(res, `delete of ${key}`);
  }
}

/** What createRecordingStore needs from the configuration. */
export interface RecordingsConfig {
  dataDir: string;
  /** Set: recordings go to this bucket instead of `DATA_DIR/recordings`. */
  recordingsS3?: S3Settings;
}

/** The bucket from `RECORDINGS_S3_*` variables, or undefined when none is set; throws ConfigError naming a bad one. */
export function s3SettingsFromEnv(env: Record<string, string | undefined>): S3Settings | undefined {
  const get = (name: string) => env[name]?.trim() || undefined;
  const names = ['RECORDINGS_S3_ENDPOINT', 'RECORDINGS_S3_BUCKET', 'RECORDINGS_S3_REGION', 'RECORDINGS_S3_ACCESS_KEY_ID', 'RECORDINGS_S3_SECRET_ACCESS_KEY'];
  if (names.every((n) => get(n) === undefined)) return undefined;
  for (const n of ['RECORDINGS_S3_BUCKET', 'RECORDINGS_S3_ACCESS_KEY_ID', 'RECORDINGS_S3_SECRET_ACCESS_KEY']) {
    if (!get(n)) throw new ConfigError(n, 'must be set when any RECORDINGS_S3_* variable is set');
  }
  const region = get('RECORDINGS_S3_REGION') ?? 'us-east-1';
  const endpoint = get('RECORDINGS_S3_ENDPOINT') ?? `https://s3.${region}.amazonaws.com`;
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new ConfigError('RECORDINGS_S3_ENDPOINT', `is not a valid URL: "${endpoint}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError('RECORDINGS_S3_ENDPOINT', 'must start with http:// or https://');
  if (parsed.username || parsed.password || parsed.search || parsed.hash) throw new ConfigError('RECORDINGS_S3_ENDPOINT', 'must be a plain base URL (no credentials, query or fragment)');
  return {
    endpoint: endpoint.replace(/\/+$/, ''),
    bucket: get('RECORDINGS_S3_BUCKET')!,
    region,
    accessKeyId: get('RECORDINGS_S3_ACCESS_KEY_ID')!,
    secretAccessKey: get('RECORDINGS_S3_SECRET_ACCESS_KEY')!,
    sessionToken: get('RECORDINGS_S3_SESSION_TOKEN'),
  };
}

/** The configured store: the bucket when `recordingsS3` is set, else files under `DATA_DIR/recordings`. */
export function createRecordingStore(config: RecordingsConfig): RecordingStore {
  return config.recordingsS3 ? new S3RecordingStore(config.recordingsS3) : new LocalRecordingStore(join(config.dataDir, 'recordings'));
}
