import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { buildApp } from '../../src/app.js';
import { WebSocket } from 'ws';
import { TwilioStreamClient } from '../../src/simulator/twilio-stream-client.js';
import type { CallEvent } from '../../src/calls/call-events.js';

const until = async (check: () => Promise<boolean> | boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('the Twilio media stream socket', () => {
  let t: TestApp;
  let org: TestOrg;
  let url: string;
  const events: CallEvent[] = [];

  beforeAll(async () => {
    t = await testApp();
    org = await t.createOrg();
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `${address.replace('http', 'ws')}/twilio/media`;
    t.app.callEvents.subscribe((e) => events.push(e));
  });
  afterAll(() => t.close());

  const newCall = async () => {
    const call = await t.app.calls.create(org.id, { agentId: null, direction: 'inbound', fromNumber: '+15550001111', toNumber: '+15550002222' });
    return { call, token: await t.app.calls.issueStreamToken(call) };
  };
  const stored = (id: string) => t.app.calls.get(org.id, id);

  it('starts a session for a valid token and marks the call in progress', async () => {
    const { call, token } = await newCall();
    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    await until(() => t.app.callSessions.has(call.id));
    expect(await stored(call.id)).toMatchObject({ status: 'in_progress', streamSid: client.streamSid, providerCallSid: client.callSid });
    client.stop();
    await client.closed;
  });

  it('opens a session from a test call started through the API', async () => {
    const agent = (await t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'Tester', voice: { provider: 'echo', voiceId: 'echo' } } })).json<{ id: string }>();
    const res = await t.as(org.keys.member, { method: 'POST', url: `/v1/agents/${agent.id}/test-calls` });
    expect(res.statusCode).toBe(201);
    const { callId, token, streamUrl } = res.json<{ callId: string; token: string; streamUrl: string }>();
    expect(streamUrl).toBe('wss://vocelio.test/twilio/media');
    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    await until(() => t.app.callSessions.has(callId));
    expect((await stored(callId)).agentId).toBe(agent.id);
    client.stop();
    await client.closed;
  });

  it('ends a call to an agent whose providers are not configured, naming what is missing', async () => {
    const agent = (await t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'Unconfigured' } })).json<{ id: string }>();
    const res = await t.as(org.keys.member, { method: 'POST', url: `/v1/agents/${agent.id}/test-calls`, payload: { variables: { name: 'Ada' } } });
    const { callId, token } = res.json<{ callId: string; token: string }>();
    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    await client.closed;
    const call = await stored(callId);
    expect(call).toMatchObject({ endReason: 'provider_error', variables: { name: 'Ada' } });
    expect(call.endDetail).toContain('DEEPGRAM_API_KEY');
  });

  it('closes the call record with stream_stopped when Twilio sends stop', async () => {
    const { call, token } = await newCall();
    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    await client.silence(100);
    client.stop();
    expect((await client.closed).code).toBe(1000);
    await until(async () => (await stored(call.id)).endedAt !== null);
    expect(await stored(call.id)).toMatchObject({ status: 'completed', endReason: 'stream_stopped' });
    expect(t.app.callSessions.has(call.id)).toBe(false);
  });

  it('closes the call record with socket_closed when the socket drops mid-call', async () => {
    const { call, token } = await newCall();
    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    await until(() => t.app.callSessions.has(call.id));
    client.drop();
    await until(async () => (await stored(call.id)).endedAt !== null);
    expect((await stored(call.id)).endReason).toBe('socket_closed');
  });

  it.each([
    ['missing', () => ({})],
    ['forged', () => ({ token: 'not-a-token' })],
  ])('refuses a %s token with a policy-violation close and no session', async (_what, params) => {
    const before = t.app.callSessions.size;
    const client = new TwilioStreamClient({ url, customParameters: params() });
    await client.connect();
    const closed = await client.closed;
    expect(closed.code).toBe(1008);
    expect(t.app.callSessions.size).toBe(before);
  });

  it('refuses a token that has already been used', async () => {
    const { call, token } = await newCall();
    const first = new TwilioStreamClient({ url, customParameters: { token } });
    await first.connect();
    // Until the server has spent the token for the first socket, either socket could win it.
    await until(() => t.app.callSessions.has(call.id));
    const second = new TwilioStreamClient({ url, customParameters: { token } });
    await second.connect();
    expect((await second.closed).code).toBe(1008);
    first.stop();
    await first.closed;
  });

  it('runs one session when two streams of one call reach two serve nodes at once, and refuses the other', async () => {
    // A second node on the same database: the claim must hold across processes, not in one node's memory.
    const other = await buildApp(t.config, { database: t.database });
    const otherUrl = `${(await other.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws')}/twilio/media`;
    try {
      const { call, token } = await newCall();
      const retryToken = await t.app.calls.issueStreamToken(call);
      const a = new TwilioStreamClient({ url, customParameters: { token } });
      const b = new TwilioStreamClient({ url: otherUrl, customParameters: { token: retryToken } });
      await Promise.all([a.connect(), b.connect()]);
      const codes = await Promise.all([a, b].map((c) => Promise.race([c.closed.then((x) => x.code), new Promise<'open'>((r) => setTimeout(() => r('open'), 3000))])));
      expect([...codes].sort()).toEqual([1008, 'open']);
      const sessions = [t.app.callSessions.has(call.id), other.callSessions.has(call.id)];
      expect(sessions.filter(Boolean)).toHaveLength(1);
      const winner = codes.indexOf('open') === 0 ? a : b;
      expect((await stored(call.id)).streamSid).toBe(winner.streamSid);
      winner.stop();
      await winner.closed;
      await until(async () => (await stored(call.id)).endedAt !== null);
      expect((await stored(call.id)).endReason).toBe('stream_stopped');
    } finally {
      await other.close();
    }
  });

  it('refuses an expired token', async () => {
    const call = await t.app.calls.create(org.id, { agentId: null, direction: 'inbound' });
    const token = await t.app.calls.issueStreamToken(call, -1000);
    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    expect((await client.closed).code).toBe(1008);
  });

  it('publishes the caller\'s DTMF keys as call events', async () => {
    const { call, token } = await newCall();
    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    await until(() => t.app.callSessions.has(call.id));
    client.dtmf('7');
    await until(() => events.some((e) => e.type === 'call.dtmf' && e.callId === call.id));
    expect(events.find((e) => e.type === 'call.dtmf' && e.callId === call.id)).toMatchObject({ digit: '7', organizationId: org.id });
    client.stop();
    await client.closed;
  });

  it('survives a fuzzed stream without disturbing a healthy call next to it', async () => {
    const healthy = await newCall();
    const good = new TwilioStreamClient({ url, customParameters: { token: healthy.token } });
    await good.connect();
    const fuzzed = await newCall();
    const bad = new TwilioStreamClient({ url, customParameters: { token: fuzzed.token } });
    await bad.connect();
    await until(() => t.app.callSessions.has(fuzzed.call.id));
    const junk: Array<string | Buffer> = [
      '{not json',
      '[]',
      '"hello"',
      '{"event":"unknown"}',
      '{"event":"media"}',
      '{"event":"media","sequenceNumber":"1","streamSid":"x","media":{"payload":"%%%","chunk":"1","timestamp":"0"}}',
      JSON.stringify({ event: 'media', sequenceNumber: '1', streamSid: 'x', media: { chunk: '1', timestamp: '0', payload: 'A'.repeat(50_000) } }),
      Buffer.from([0, 1, 2, 3]),
      '{"event":"start"}',
    ];
    for (const j of junk) bad.sendRaw(j);
    await good.silence(200);
    expect(t.app.callSessions.has(healthy.call.id)).toBe(true);
    expect((await stored(healthy.call.id)).endedAt).toBeNull();
    // A peer that keeps sending garbage is cut off, and its call record closed with the reason.
    for (let i = 0; i < 30; i++) bad.sendRaw('{garbage');
    await until(async () => (await stored(fuzzed.call.id)).endedAt !== null);
    expect((await stored(fuzzed.call.id)).endReason).toBe('protocol_error');
    expect(t.app.callSessions.has(healthy.call.id)).toBe(true);
    good.stop();
    await good.closed;
  });

  it('refuses media sent before start', async () => {
    const client = new TwilioStreamClient({ url, customParameters: {} });
    // Connect a raw socket that skips start.
    const { WebSocket } = await import('ws');
    const ws = new WebSocket(url);
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ event: 'media', sequenceNumber: '1', streamSid: client.streamSid, media: { chunk: '1', timestamp: '0', payload: '//8=' } }));
    const code = await new Promise<number>((r) => ws.once('close', (c) => r(c)));
    expect(code).toBe(1008);
  });

  it('refuses an oversize frame by closing the socket', async () => {
    const { WebSocket } = await import('ws');
    const ws = new WebSocket(url);
    await new Promise((r) => ws.once('open', r));
    ws.send('x'.repeat(200_000));
    const code = await new Promise<number>((r) => ws.once('close', (c) => r(c)));
    expect(code).toBe(1009);
  });
});

describe('media sockets that have not authenticated', () => {
  let t: TestApp;
  let org: TestOrg;
  let url: string;
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    // Client addresses come from X-Forwarded-For set by the (loopback) proxy, so one test machine can be
    // several callers.
    t = await testApp({ TRUST_PROXY: 'loopback', MEDIA_START_TIMEOUT_MS: '600', MEDIA_PENDING_SOCKETS_MAX: '4', MEDIA_PENDING_SOCKETS_PER_ADDRESS: '2' });
    org = await t.createOrg();
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `${address.replace('http', 'ws')}/twilio/media`;
  });
  afterAll(async () => {
    for (const s of sockets) s.terminate();
    await t.close();
  });

  /** Opens a raw socket as `from`; resolves 'open' or the HTTP status the upgrade was refused with. */
  const attempt = (from: string): Promise<{ ws: WebSocket; outcome: 'open' | number }> =>
    new Promise((resolve) => {
      const ws = new WebSocket(url, { headers: { 'x-forwarded-for': from } });
      sockets.push(ws);
      ws.on('error', () => {});
      ws.once('open', () => resolve({ ws, outcome: 'open' }));
      ws.once('unexpected-response', (_req, res) => resolve({ ws, outcome: res.statusCode ?? 0 }));
    });
  // Waits until the server has counted every closed socket out (it learns of a close asynchronously).
  const settled = async (open: number) => {
    for (const s of sockets) s.terminate();
    sockets.length = 0;
    await until(async () => (await t.app.inject({ method: 'GET', url: '/metrics' })).body.includes(`vocelio_media_sockets_pending ${open}\n`));
  };
  const closeCode = (ws: WebSocket, ms: number): Promise<number | 'open'> =>
    Promise.race([new Promise<number>((r) => ws.once('close', (code) => r(code))), new Promise<'open'>((r) => setTimeout(() => r('open'), ms))]);

  it('closes a socket that never sends start with 1008 after the start timeout', async () => {
    const { ws, outcome } = await attempt('198.51.100.1');
    expect(outcome).toBe('open');
    const opened = Date.now();
    ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
    expect(await closeCode(ws, 3000)).toBe(1008);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(500);
    await settled(0);
  });

  it('refuses sockets beyond the per-address cap while they wait for start, and still lets another address in', async () => {
    const a1 = await attempt('198.51.100.10');
    const a2 = await attempt('198.51.100.10');
    const a3 = await attempt('198.51.100.10');
    expect([a1.outcome, a2.outcome, a3.outcome]).toEqual(['open', 'open', 503]);
    // Another caller is not held up by the first one's idle sockets.
    expect((await attempt('198.51.100.11')).outcome).toBe('open');
    await settled(0);
  });

  it('refuses sockets beyond the global cap with 503 and Retry-After', async () => {
    const held = await Promise.all(['198.51.100.20', '198.51.100.21', '198.51.100.22', '198.51.100.23'].map((a) => attempt(a)));
    expect(held.map((h) => h.outcome)).toEqual(['open', 'open', 'open', 'open']);
    const refused = await new Promise<{ status: number; retryAfter: string | undefined; body: string }>((resolve) => {
      const ws = new WebSocket(url, { headers: { 'x-forwarded-for': '198.51.100.24' } });
      sockets.push(ws);
      ws.on('error', () => {});
      ws.once('open', () => resolve({ status: 101, retryAfter: undefined, body: '{}' }));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }));
      });
    });
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toBeDefined();
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'too_many_pending_streams' } });
    expect((await t.app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/vocelio_media_sockets_refused_total [1-9]/);
    await settled(0);
  });

  it('no longer counts a socket once its start was accepted', async () => {
    const calls = await Promise.all([0, 1, 2].map(() => t.app.calls.create(org.id, { agentId: null, direction: 'inbound' })));
    const clients: TwilioStreamClient[] = [];
    for (const call of calls) {
      const client = new TwilioStreamClient({ url, customParameters: { token: await t.app.calls.issueStreamToken(call) } });
      // All from 127.0.0.1 (no X-Forwarded-For): three live calls from one address, cap 2 pending.
      await client.connect();
      await until(() => t.app.callSessions.has(call.id));
      clients.push(client);
    }
    expect(clients).toHaveLength(3);
    for (const c of clients) c.stop();
    await Promise.all(clients.map((c) => c.closed));
  });
});

