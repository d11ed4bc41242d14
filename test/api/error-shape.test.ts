import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { testApp, testConfig, type TestApp } from '../helpers/app.js';
import { freshDatabase } from '../helpers/database.js';

/** Sends raw bytes to the listening app and returns everything it answers before closing. */
function rawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('end', () => resolve(answer));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.write(request);
  });
}

/** Status code and parsed JSON body of a raw HTTP/1.1 response. */
function parse(answer: string): { status: number; headers: string; body: { error: Record<string, unknown> } } {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: head.toLowerCase(), body: JSON.parse(body) };
}

describe('errors the HTTP parser meets before a request exists', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await testApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as { port: number }).port;
  });
  afterAll(() => t.close());

  it('answers 431 with the error shape to headers that are too large', async () => {
    const answer = parse(await rawRequest(port, `GET /v1/agents HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(answer.status).toBe(431);
    expect(answer.headers).toContain('content-type: application/json');
    expect(answer.body).toEqual({ error: { code: 'headers_too_large', message: expect.any(String), details: null, requestId: expect.stringMatching(/^req_/) } });
    expect(answer.headers).toContain(`x-request-id: ${String(answer.body.error.requestId).toLowerCase()}`);
  });

  it('answers 400 with the error shape to a request that is not HTTP', async () => {
    const answer = parse(await rawRequest(port, 'HELLO THERE\r\n\r\n'));
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'bad_request', details: null });
  });
});

describe('a server that is shutting down', () => {
  it('answers new requests 503 shutting_down with the error shape and Retry-After', async () => {
    const database = await freshDatabase();
    const app = await buildApp(testConfig(), { database });
    // Holds the close open, as a live call ending would, while a new request arrives.
    let release!: () => void;
    let closeStarted!: () => void;
    const started = new Promise<void>((resolve) => (closeStarted = resolve));
    app.addHook('preClose', async () => {
      closeStarted();
      await new Promise<void>((resolve) => (release = resolve));
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    const closing = app.close();
    await started;
    const answer = parse(await rawRequest(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
    release();
    await closing;
    await database.close();
    expect(answer.status).toBe(503);
    expect(answer.headers).toContain('retry-after: 1');
    expect(answer.body).toEqual({ error: { code: 'shutting_down', message: expect.any(String), details: { retryAfterSeconds: 1 }, requestId: expect.stringMatching(/^req_/) } });
  });
});
