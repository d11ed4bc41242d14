import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { AppError, ProviderError } from '../../shared/errors.js';
import type { S3Settings } from '../../config.js';
import { S3RecordingStore, signS3Request } from './s3-recording-store.js';

const ACCESS_KEY = 'AKIDVOCELIOTEST';
const SECRET = 'vocelio/test+secret';
const KEY = 'org_a/call_b.wav';

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
}

/**
 * A tiny S3 (path-style PUT/GET/HEAD/DELETE on one bucket) that checks every request's Signature V4 against
 * the secret it knows, the way S3 does, and answers S3's XML errors.
 */
class FakeS3 {
  readonly objects = new Map<string, Buffer>();
  readonly seen: SeenRequest[] = [];
  failNext: number | null = null;
  private server: Server | null = null;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, Buffer.concat(chunks), res));
    });
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((ok) => this.server?.close(() => ok()));
  }

  private error(res: ServerResponse, status: number, code: string): void {
    res.writeHead(status, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`);
  }

  /** The signature check, written from the SigV4 specification independently of the store's signer. */
  private authFailure(req: IncomingMessage, body: Buffer): string | null {
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([a-z0-9-]+)\/s3\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(req.headers.authorization ?? '');
    if (!m) return 'AccessDenied';
    const [, accessKey, day, region, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string];
    if (accessKey !== ACCESS_KEY) return 'InvalidAccessKeyId';
    const date = String(req.headers['x-amz-date'] ?? '');
    if (!date.startsWith(day)) return 'AuthorizationHeaderMalformed';
    const names = signedHeaders.split(';');
    if (!['host', 'x-amz-date', 'x-amz-content-sha256'].every((h) => names.includes(h))) return 'AccessDenied';
    if ([...names].sort().join(';') !== signedHeaders) return 'SignatureDoesNotMatch';
    const payloadHash = String(req.headers['x-amz-content-sha256'] ?? '');
    if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== sha256(body)) return 'XAmzContentSHA256Mismatch';
    const [path, query = ''] = (req.url ?? '/').split('?');
    const canonical = [
      req.method,
      path,
      query.split('&').filter(Boolean).sort().join('&'),
      names.map((h) => `${h}:${String(req.headers[h] ?? '').trim()}\n`).join(''),
      signedHeaders,
      payloadHash,
    ].join('\n');
    const toSign = ['AWS4-HMAC-SHA256', date, `${day}/${region}/s3/aws4_request`, sha256(canonical)].join('\n');
    const key = hmac(hmac(hmac(hmac(`AWS4${SECRET}`, day), region), 's3'), 'aws4_request');
    return createHmac('sha256', key).update(toSign).digest('hex') === signature ? null : 'SignatureDoesNotMatch';
  }

  private handle(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    this.seen.push({ method: req.method ?? '', path, headers: req.headers });
    const failure = this.authFailure(req, body);
    if (failure) return this.error(res, 403, failure);
    if (this.failNext !== null) {
      const status = this.failNext;
      this.failNext = null;
      return this.error(res, status, 'SlowDown');
    }
    const object = this.objects.get(path);
    switch (req.method) {
      case 'PUT':
        if (req.headers['content-length'] === undefined) return this.error(res, 411, 'MissingContentLength');
        this.objects.set(path, body);
        return void res.writeHead(200, { etag: `"${sha256(body).slice(0, 32)}"` }).end();
      case 'HEAD':
        if (!object) return void res.writeHead(404).end();
        return void res.writeHead(200, { 'content-length': object.length, 'content-type': 'audio/wav' }).end();
      case 'GET': {
        if (!object) return this.error(res, 404, 'NoSuchKey');
        const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
        if (!range) return void res.writeHead(200, { 'content-length': object.length }).end(object);
        const start = Number(range[1]);
        const end = Math.min(Number(range[2]), object.length - 1);
        if (start >= object.length) return this.error(res, 416, 'InvalidRange');
        return void res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${object.length}` }).end(object.subarray(start, end + 1));
      }
      case 'DELETE':
        this.objects.delete(path);
        return void res.writeHead(204).end();
      default:
        return this.error(res, 405, 'MethodNotAllowed');
    }
  }
}

describe('signS3Request', () => {
  it("reproduces the signature of AWS's documented GET Object example", () => {
    // https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "Example: GET Object".
    const headers = signS3Request(
      { method: 'GET', url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'), headers: { Range: 'bytes=0-9' }, payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
      { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      'us-east-1',
      new Date('2013-05-24T00:00:00Z'),
    );
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
    expect(headers['x-amz-date']).toBe('20130524T000000Z');
  });
});

describe('S3RecordingStore', () => {
  const s3 = new FakeS3();
  let dir: string;
  let settings: S3Settings;
  let store: S3RecordingStore;
  const audio = randomBytes(40_000);
  const tempFile = async () => {
    const path = join(dir, `rec-${randomBytes(4).toString('hex')}.wav`);
    await writeFile(path, audio);
    return path;
  };

  beforeAll(() => s3.start());
  afterAll(() => s3.stop());
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vocelio-s3-'));
    settings = { endpoint: s3.url, bucket: 'recordings', region: 'eu-west-1', accessKeyId: ACCESS_KEY, secretAccessKey: SECRET };
    store = new S3RecordingStore(settings);
    s3.objects.clear();
    s3.seen.length = 0;
    s3.failNext = null;
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('uploads a saved file to <bucket>/<key> with a signed payload hash, then deletes the local copy', async () => {
    const from = await tempFile();
    expect(await store.save(KEY, from)).toEqual({ bytes: audio.length });
    expect(s3.objects.get(`/recordings/${KEY}`)).toEqual(audio);
    expect(existsSync(from)).toBe(false);
    const put = s3.seen.find((r) => r.method === 'PUT')!;
    expect(put.headers['x-amz-content-sha256']).toBe(sha256(audio));
    expect(put.headers['content-type']).toBe('audio/wav');
  });

  it('signs every request with a SigV4 Authorization header for its region', async () => {
    await store.save(KEY, await tempFile());
    await store.stat(KEY);
    await buffer(await store.read(KEY, { start: 0, end: 9 }));
    await store.remove(KEY);
    expect(s3.seen.map((r) => r.method)).toEqual(['PUT', 'HEAD', 'GET', 'DELETE']);
    for (const r of s3.seen) {
      expect(r.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDVOCELIOTEST\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=([a-z0-9-]+;)*host;([a-z0-9-]+;)*x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/,
      );
      expect(r.headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
    }
  });

  it('reports the size of a stored object and null for a missing one', async () => {
    await store.save(KEY, await tempFile());
    expect(await store.stat(KEY)).toEqual({ bytes: audio.length });
    expect(await store.stat('org_a/missing.wav')).toBeNull();
  });

  it('reads the whole object and an inclusive byte range of it', async () => {
    await store.save(KEY, await tempFile());
    expect(await buffer(await store.read(KEY))).toEqual(audio);
    expect(await buffer(await store.read(KEY, { start: 1000, end: 1999 }))).toEqual(audio.subarray(1000, 2000));
    expect(s3.seen.at(-1)!.headers.range).toBe('bytes=1000-1999');
  });

  it('answers recording_not_found when reading a missing object', async () => {
    const err = await store.read('org_a/missing.wav').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'recording_not_found', status: 404 });
  });

  it('removes an object, and removing a missing one is fine', async () => {
    await store.save(KEY, await tempFile());
    await store.remove(KEY);
    expect(s3.objects.size).toBe(0);
    await expect(store.remove(KEY)).resolves.toBeUndefined();
  });

  it('sends and signs the session token of temporary credentials', async () => {
    store = new S3RecordingStore({ ...settings, sessionToken: 'session-token-1' });
    await store.stat(KEY);
    expect(s3.seen[0]!.headers['x-amz-security-token']).toBe('session-token-1');
    expect(s3.seen[0]!.headers.authorization).toContain('x-amz-security-token');
  });

  it('fails with a non-retryable ProviderError when the bucket refuses the signature, keeping the local file', async () => {
    store = new S3RecordingStore({ ...settings, secretAccessKey: 'wrong' });
    const from = await tempFile();
    const err = await store.save(KEY, from).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ provider: 's3', status: 403, retryable: false });
    expect((err as Error).message).toContain('SignatureDoesNotMatch');
    expect(existsSync(from)).toBe(true);
  });

  it('marks a throttled request retryable', async () => {
    s3.failNext = 503;
    const err = await store.stat(KEY).catch((e: unknown) => e);
    expect(err).toMatchObject({ provider: 's3', status: 503, retryable: true });
  });

  it('refuses keys that are not recording keys before sending anything', async () => {
    await expect(store.stat('../other-bucket/x')).rejects.toThrow(/invalid recording key/);
    expect(s3.seen).toEqual([]);
  });
});
