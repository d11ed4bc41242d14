import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { testApp, type TestApp } from '../helpers/app.js';
import { TwilioStreamClient } from '../../src/simulator/twilio-stream-client.js';

/** A raw TCP connection to the app: what arrived, and when the server closed it (ms after `opened`). */
interface RawConnection {
  socket: Socket;
  opened: number;
  received: () => string;
  closed: Promise<number>;
}

async function rawConnection(port: number): Promise<RawConnection> {
  const socket = connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let data = '';
  socket.on('data', (d: Buffer) => (data += d.toString()));
  socket.on('error', () => {});
  const opened = Date.now();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - opened)));
  return { socket, opened, received: () => data, closed };
}

// The close time within `ms`, or 'open' if the server kept the connection.
const closedWithin = (c: RawConnection, ms: number): Promise<number | 'open'> =>
  Promise.race([c.closed, new Promise<'open'>((r) => setTimeout(() => r('open'), ms))]);

// Timeouts are a few hundred ms here so the tests do not sleep; production values are in docs/decisions.md.
describe('HTTP server timeouts', () => {
  let t: TestApp;
  let port: number;
  const connections: RawConnection[] = [];
  const open = async (): Promise<RawConnection> => {
    const c = await rawConnection(port);
    connections.push(c);
    return c;
  };

  beforeAll(async () => {
    t = await testApp({ HTTP_REQUEST_TIMEOUT_MS: '800', HTTP_HEADERS_TIMEOUT_MS: '500', HTTP_KEEP_ALIVE_TIMEOUT_MS: '400' });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const c of connections) c.socket.destroy();
    await t.close();
  });

  it('cuts a POST whose body trickles in more slowly than the request timeout, with 408', async () => {
    const c = await open();
    c.socket.write('POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{');
    // One byte every 100 ms: never idle, never finished.
    const drip = setInterval(() => c.socket.writable && c.socket.write(' '), 100);
    const closedAfter = await closedWithin(c, 4000);
    clearInterval(drip);
    expect(closedAfter).not.toBe('open');
    expect(closedAfter).toBeGreaterThanOrEqual(700);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection whose headers never finish', async () => {
    const c = await open();
    c.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const drip = setInterval(() => c.socket.writable && c.socket.write('X-Slow: 1\r\n'), 100);
    const closedAfter = await closedWithin(c, 4000);
    clearInterval(drip);
    expect(closedAfter).not.toBe('open');
    expect(c.received()).not.toContain('200 OK');
  });

  it('closes a connection that never sends a byte', async () => {
    const c = await open();
    expect(await closedWithin(c, 4000)).not.toBe('open');
  });

  it('closes an idle keep-alive connection after the keep-alive timeout, not before', async () => {
    const c = await open();
    c.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
    const closedAfter = await closedWithin(c, 4000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(c.received()).toMatch(/keep-alive: timeout=0*\d/i);
    expect(closedAfter).not.toBe('open');
    expect(closedAfter).toBeGreaterThanOrEqual(300);
  });

  it('does not cut a live media WebSocket that outlasts every HTTP timeout', async () => {
    const org = await t.createOrg();
    const call = await t.app.calls.create(org.id, { agentId: null, direction: 'inbound' });
    const client = new TwilioStreamClient({ url: `ws://127.0.0.1:${port}/twilio/media`, customParameters: { token: await t.app.calls.issueStreamToken(call) } });
    await client.connect();
    await client.silence(1600);
    client.stop();
    expect((await client.closed).code).toBe(1000);
    expect((await t.app.calls.get(org.id, call.id)).endReason).toBe('stream_stopped');
  });
});
