// Recordings in an S3-compatible bucket (AWS S3, MinIO, R2, ...) spoken to with plain fetch and Signature V4,
// so no SDK is needed for four calls.
import { createHash, createHmac } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat as fsStat, unlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ProviderError } from '../../shared/errors.js';
import type { S3Settings } from '../../config.js';
import { assertByteRange, assertRecordingKey, recordingNotFound, type ByteRange, type RecordingStore } from './recording-store.js';

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
    assertRecordingKey(key);
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
    if (range) assertByteRange(range);
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
