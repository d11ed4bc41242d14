import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { rmSync } from 'node:fs';
import { testApp, testConfig, type TestApp, type TestOrg } from '../helpers/app.js';
import { SseClient } from '../helpers/sse.js';
import type { CallEvent } from '../../src/calls/call-events.js';

const until = async (check: () => boolean | Promise<boolean>, ms = 5000, what = 'condition') => {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('GET /v1/events/stream', () => {
  let t: TestApp;
  let a: TestOrg;
  let b: TestOrg;
  let base: string;
  const open: SseClient[] = [];

  beforeAll(async () => {
    t = await testApp({ EVENT_STREAM_HEARTBEAT_MS: '100', EVENT_STREAM_MAX_BUFFERED_BYTES: '65536', EVENT_STREAM_MAX_PER_ORGANIZATION: '3', RATE_LIMIT_PER_MINUTE: '100000' });
    [a, b] = [await t.createOrg('Alpha'), await t.createOrg('Beta')];
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  // Each test leaves no stream open, so none eats into the next one's per-organization allowance.
  afterEach(async () => {
    for (const c of open.splice(0)) c.close();
    await until(() => t.app.eventStreams.openCount === 0, 5000, 'streams closed');
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Opens a stream with a bearer key; closed after the file. */
  const stream = async (key: string, query = '', headers: Record<string, string> = {}, at = base): Promise<SseClient> => {
    const client = await SseClient.open(`${at}/v1/events/stream${query}`, { authorization: `Bearer ${key}`, ...headers });
    open.push(client);
    return client;
  };
  const newCall = (org: TestOrg) => t.app.calls.create(org.id, { agentId: null, direction: 'inbound', fromNumber: '+15550001111', toNumber: '+15550002222' });
  const transcript = (org: TestOrg, callId: string, text: string): CallEvent => ({ type: 'call.transcript', callId, organizationId: org.id, at: new Date().toISOString(), role: 'user', text, final: false });

  it('sends a tenant its own live and durable events, each kind as it should, and none of another tenant\'s', async () => {
    const [alpha, beta] = await Promise.all([stream(a.keys.viewer), stream(b.keys.viewer)]);
    expect(alpha.status).toBe(200);
    expect(alpha.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(alpha.headers['x-request-id']).toMatch(/^req_/);
    const ours = await newCall(a);
    const theirs = await newCall(b);
    const created = await alpha.waitFor((m) => m.event === 'call.created' && m.json.subject === ours.id);
    await beta.waitFor((m) => m.event === 'call.created');
    t.app.callEvents.publish(transcript(a, ours.id, 'hello alpha'));
    t.app.callEvents.publish(transcript(b, theirs.id, 'hello beta'));
    const live = await alpha.waitFor((m) => m.event === 'call.transcript');
    await beta.waitFor((m) => m.event === 'call.transcript');
    // Durable: stored, with its evt_ id as the SSE id. Live: no id, so Last-Event-ID keeps naming a durable one.
    expect(created.id).toMatch(/^evt_[0-9a-z]{26}$/);
    expect(created.json).toMatchObject({ id: created.id, type: 'call.created', subject: ours.id, data: { callId: ours.id, direction: 'inbound', from: '+15550001111', to: '+15550002222', status: 'queued' } });
    expect(live.id).toBeUndefined();
    expect(live.json).toMatchObject({ id: null, type: 'call.transcript', subject: ours.id, data: { role: 'user', text: 'hello alpha', final: false } });
    expect(live.json.data).not.toHaveProperty('organizationId');
    await sleep(100);
    expect(alpha.messages.map((m) => m.json.subject)).toEqual([ours.id, ours.id]);
    expect(beta.messages.map((m) => m.json.subject)).toEqual([theirs.id, theirs.id]);
    expect(beta.types()).toEqual(['call.created', 'call.transcript']);
  });

  it('filters by call and by type patterns', async () => {
    const [one, two] = [await newCall(a), await newCall(a)];
    // Their call.created events are out before the streams open: "now" is after them.
    await t.app.eventFeed.sync();
    const onlyOne = await stream(a.keys.viewer, `?callId=${one.id}`);
    const starts = await stream(a.keys.viewer, `?types=${encodeURIComponent('call.started, call.dtmf')}`);
    const wildcard = await stream(a.keys.viewer, `?types=call.*&callId=${two.id}`);
    await t.app.callLifecycle.claimMedia(one.id, { streamSid: 'MZ-one', providerCallSid: 'CA-one' }, t.app.nodeLease.id);
    await t.app.callLifecycle.claimMedia(two.id, { streamSid: 'MZ-two', providerCallSid: 'CA-two' }, t.app.nodeLease.id);
    await starts.waitFor((m) => m.event === 'call.started' && m.json.subject === two.id);
    for (const call of [one, two]) t.app.callEvents.publish({ type: 'call.dtmf', callId: call.id, organizationId: a.id, at: new Date().toISOString(), digit: '5' });
    t.app.callEvents.publish(transcript(a, one.id, 'only for one'));
    await onlyOne.waitFor((m) => m.event === 'call.transcript');
    await starts.waitFor((m) => m.event === 'call.dtmf' && m.json.subject === two.id);
    await wildcard.waitFor((m) => m.event === 'call.dtmf');
    await sleep(150);
    expect(onlyOne.messages.map((m) => [m.event, m.json.subject])).toEqual([['call.started', one.id], ['call.answered', one.id], ['call.dtmf', one.id], ['call.transcript', one.id]]);
    expect(starts.messages.map((m) => [m.event, m.json.subject])).toEqual([['call.started', one.id], ['call.started', two.id], ['call.dtmf', one.id], ['call.dtmf', two.id]]);
    expect(wildcard.messages.map((m) => [m.event, m.json.subject])).toEqual([['call.started', two.id], ['call.answered', two.id], ['call.dtmf', two.id]]);
    expect(starts.messages[0]!.json.data).toMatchObject({ callId: one.id, streamSid: 'MZ-one', providerCallSid: 'CA-one', startedAt: expect.any(String) });
  });

  it('replays the durable events missed since Last-Event-ID, in order, then goes on live', async () => {
    const first = await stream(a.keys.viewer, '?types=call.created');
    const seen = await newCall(a);
    const last = await first.waitFor((m) => m.json.subject === seen.id);
    first.close();
    // Written while no client listened: two of ours, one of another tenant.
    const missed = [await newCall(a), await newCall(a)];
    await newCall(b);
    const again = await stream(a.keys.viewer, '?types=call.created', { 'last-event-id': last.id! });
    await again.waitFor((m) => m.json.subject === missed[1]!.id);
    const later = await newCall(a);
    await again.waitFor((m) => m.json.subject === later.id);
    expect(again.messages.map((m) => m.json.subject)).toEqual([missed[0]!.id, missed[1]!.id, later.id]);
    expect(again.messages.every((m) => m.id?.startsWith('evt_'))).toBe(true);
    // The query parameter does the same for clients that cannot set headers.
    const byQuery = await stream(a.keys.viewer, `?types=call.created&lastEventId=${last.id!}`);
    await byQuery.waitFor((m) => m.json.subject === later.id);
    expect(byQuery.messages.map((m) => m.json.subject)).toEqual([missed[0]!.id, missed[1]!.id, later.id]);
  });

  it('says so when Last-Event-ID cannot be replayed, and streams on', async () => {
    const unknown = 'evt_01jd5z3k8m0000000000000000';
    const client = await stream(a.keys.viewer, '', { 'last-event-id': unknown });
    const notice = await client.waitFor((m) => m.event === 'replay_unavailable');
    expect(notice.json.data).toEqual({ lastEventId: unknown });
    const call = await newCall(a);
    await client.waitFor((m) => m.json.subject === call.id);
    // Another tenant's event id is as unknown as a made-up one: nothing of theirs is replayed.
    const theirs = await stream(b.keys.viewer, '?types=call.created');
    const bCall = await newCall(b);
    const bEvent = await theirs.waitFor((m) => m.json.subject === bCall.id);
    const probe = await stream(a.keys.viewer, '', { 'last-event-id': bEvent.id! });
    await probe.waitFor((m) => m.event === 'replay_unavailable');
  });

  it('keeps an idle stream alive with heartbeat comments', async () => {
    const client = await stream(a.keys.viewer);
    await sleep(450);
    expect(client.comments.filter((c) => c === 'heartbeat').length).toBeGreaterThanOrEqual(3);
    expect(client.messages).toEqual([]);
  });

  it('cuts off a client that stops reading instead of buffering for it, and keeps serving one that reads', async () => {
    const reader = await stream(a.keys.viewer, '?types=call.transcript');
    const port = new URL(base).port;
    const slow: Socket = connect(Number(port), '127.0.0.1');
    let slowClosed = false;
    slow.on('close', () => (slowClosed = true));
    slow.on('error', () => {});
    slow.write(`GET /v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${a.keys.viewer}\r\nAccept: text/event-stream\r\n\r\n`);
    // Never read: the kernel's buffers fill, then our own, up to the 64 KiB limit set for this app.
    slow.pause();
    await until(() => t.app.eventStreams.openCount === 2, 5000, 'both streams open');
    const call = await newCall(a);
    const text = 'x'.repeat(4000);
    let sent = 0;
    while (t.app.eventStreams.openCount === 2 && sent < 20_000) {
      t.app.callEvents.publish(transcript(a, call.id, `${sent} ${text}`));
      sent++;
      if (sent % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(t.app.eventStreams.openCount).toBe(1);
    // Far more was published than the limit: the cut came from the limit, not from the end of the loop.
    expect(sent).toBeLessThan(20_000);
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/^vocelio_event_streams_slow_cut_total 1$/m);
    slow.resume();
    await until(() => slowClosed, 5000, 'the slow socket closed');
    // The reading client got every one of them, in order.
    await until(() => reader.messages.length === sent, 10_000, 'the reader to catch up');
    expect(reader.messages.map((m) => Number(String(m.json.data.text).split(' ')[0]))).toEqual([...Array(sent).keys()]);
  }, 30_000);

  it('limits open streams per organization with 429', async () => {
    const three = [await stream(a.keys.viewer), await stream(a.keys.viewer), await stream(a.keys.viewer)];
    const fourth = await stream(a.keys.viewer);
    expect(fourth.status).toBe(429);
    expect(JSON.parse(await fourth.body())).toMatchObject({ error: { code: 'too_many_streams', details: { limit: 3 }, requestId: expect.any(String) } });
    // Another organization has its own allowance.
    expect((await stream(b.keys.viewer)).status).toBe(200);
    three[0]!.close();
    await until(() => t.app.eventStreams.openCount === 3, 5000, 'a place freed');
    expect((await stream(a.keys.viewer)).status).toBe(200);
  });

  it('refuses bad filters, unknown calls and missing rights with our error shape', async () => {
    const call = await newCall(b);
    const cases: [string, Record<string, string>, string, number, string][] = [
      ['', {}, '', 401, 'unauthorized'],
      ['?types=CALL.started', {}, a.keys.viewer, 400, 'invalid_request'],
      ['?types=call.*.ended', {}, a.keys.viewer, 400, 'invalid_request'],
      ['?types=,', {}, a.keys.viewer, 400, 'invalid_request'],
      ['?callId=call_nope', {}, a.keys.viewer, 400, 'validation_failed'],
      ['?since=1', {}, a.keys.viewer, 400, 'validation_failed'],
      ['', { 'last-event-id': 'evt_bad' }, a.keys.viewer, 400, 'validation_failed'],
      [`?callId=${call.id}`, {}, a.keys.viewer, 404, 'not_found'],
    ];
    for (const [query, headers, key, status, code] of cases) {
      const res = await SseClient.open(`${base}/v1/events/stream${query}`, key ? { authorization: `Bearer ${key}`, ...headers } : headers);
      expect(res.status, query).toBe(status);
      const body = JSON.parse(await res.body()) as { error: { code: string; requestId: string; details: unknown } };
      expect(body.error.code, query).toBe(code);
      expect(body.error.requestId).toEqual(expect.any(String));
    }
    const scoped = await t.as(a.keys.owner, { method: 'POST', url: '/v1/api-keys', payload: { name: 'agents only', role: 'viewer', scopes: ['agents:read'] } });
    const refused = await SseClient.open(`${base}/v1/events/stream`, { authorization: `Bearer ${scoped.json<{ secret: string }>().secret}` });
    expect(refused.status).toBe(403);
    expect(t.app.eventStreams.openCount).toBe(0);
  });

  it('streams to a dashboard session cookie as well as an API key', async () => {
    const login = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: a.ownerEmail, password: a.ownerPassword } });
    expect(login.statusCode).toBe(200);
    const cookie = login.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    const client = await SseClient.open(`${base}/v1/events/stream?types=call.created`, { cookie });
    open.push(client);
    expect(client.status).toBe(200);
    const call = await newCall(a);
    await client.waitFor((m) => m.json.subject === call.id);
  });

  it('ends open streams when the server closes, so it can', async () => {
    const other: FastifyInstance = await buildApp(t.config, { database: t.database });
    const at = await other.listen({ port: 0, host: '127.0.0.1' });
    const client = await stream(a.keys.viewer, '', {}, at);
    expect(client.status).toBe(200);
    await other.close();
    await client.ended;
  });

  it('keeps a stream open past every HTTP timeout', async () => {
    const config = testConfig({ HTTP_REQUEST_TIMEOUT_MS: '400', HTTP_HEADERS_TIMEOUT_MS: '200', HTTP_KEEP_ALIVE_TIMEOUT_MS: '200', EVENT_STREAM_HEARTBEAT_MS: '100' });
    const other: FastifyInstance = await buildApp(config, { database: t.database });
    try {
      const client = await stream(a.keys.viewer, '?types=call.created', {}, await other.listen({ port: 0, host: '127.0.0.1' }));
      await sleep(1500);
      const call = await newCall(a);
      await client.waitFor((m) => m.json.subject === call.id);
      expect(client.comments.filter((c) => c === 'heartbeat').length).toBeGreaterThan(10);
    } finally {
      await other.close();
      rmSync(config.dataDir, { recursive: true, force: true });
    }
  });

  it.runIf(process.env.DATABASE_URL && process.env.REDIS_URL)('delivers an event raised on one node to a client of another', async () => {
    const other: FastifyInstance = await buildApp(t.config, { database: t.database });
    try {
      const at = await other.listen({ port: 0, host: '127.0.0.1' });
      const client = await stream(a.keys.viewer, '', {}, at);
      // Both kinds raised on the first node: a durable one (PostgreSQL carries it) and a live one (Redis).
      const call = await newCall(a);
      await client.waitFor((m) => m.event === 'call.created' && m.json.subject === call.id);
      t.app.callEvents.publish(transcript(a, call.id, 'across nodes'));
      const live = await client.waitFor((m) => m.event === 'call.transcript');
      expect(live.json.data).toMatchObject({ text: 'across nodes' });
    } finally {
      await other.close();
    }
  });
});
