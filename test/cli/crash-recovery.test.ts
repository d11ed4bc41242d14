import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, eq, inArray } from 'drizzle-orm';
import { freePort, serve, stop, waitForHealth, worker, type ServeProcess } from '../helpers/cli.js';
import { freshPostgresUrl } from '../helpers/database.js';
import { SseClient } from '../helpers/sse.js';
import { startFakeTwilio, type FakeTwilio, type FakeWebhookDelivery } from '../fakes/twilio.js';
import { TwilioStreamClient } from '../../src/simulator/twilio-stream-client.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { events, type EventRow } from '../../src/events/events.table.js';

// Issue 10: `vocelio serve` dies with SIGKILL while calls are live and while an outbound call is being placed;
// a new serve on the same data must end and finalize every one of them, once, and deliver their events.

/** The bound: from the crash to every call final. */
const RECOVERY_MS = 60_000;
// Short heartbeats, leases and sweeps, so the dead node is noticed in seconds instead of the defaults' tens of seconds.
const FAST_RECOVERY = { NODE_HEARTBEAT_MS: '500', NODE_LEASE_MS: '2000', CALL_SWEEP_MS: '500', CALL_FINALIZE_GRACE_MS: '5000' };
const HELLO = new Uint8Array(readFileSync(join(import.meta.dirname, '../fixtures/audio/hello.ulaw')));
const OUR_NUMBER = '+14155550101';

/** Where the children keep their data. */
interface Backend {
  /** DATABASE_URL and REDIS_URL for the children; none on the embedded default. */
  env: Record<string, string>;
  /** Whether serve dispatches events itself (the embedded default) or needs `vocelio worker` to. */
  embedded: boolean;
  /** Opens the database directly; on PGlite only while no serve holds the data dir. */
  open(dataDir: string): Promise<Database>;
  dispose(): Promise<void>;
}

const embeddedBackend = async (): Promise<Backend> => ({
  env: {},
  embedded: true,
  open: (dataDir) => openDatabase({ dataDir }),
  dispose: async () => {},
});

const postgresBackend = async (): Promise<Backend> => {
  const template = inject('dbTemplate');
  // A copy of the run's migrated template, named after this run so that only this run ever drops it.
  const db = await freshPostgresUrl(template.kind === 'postgres' ? template.name : undefined);
  return {
    env: { DATABASE_URL: db.url, REDIS_URL: process.env.REDIS_URL! },
    embedded: false,
    open: () => openDatabase({ databaseUrl: db.url, poolSize: 1 }),
    dispose: () => db.drop(),
  };
};

interface ApiCall {
  id: string;
  direction: string;
  status: string;
  endReason: string | null;
  endedAt: string | null;
  finalizedAt?: string | null;
  durationSeconds: number | null;
  providerCallSid: string | null;
}

/** Polls `read` until `ok` holds or `deadline` (epoch ms) passes; the failure shows the last value. */
async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, deadline: number, what: string): Promise<T> {
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not true in time; last seen ${JSON.stringify(value, null, 1)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The stream URL and token of a `<Connect><Stream>` TwiML answer. */
function streamOf(twiml: string): { url: string; token: string } {
  const url = /<Stream url="([^"]+)"/.exec(twiml)?.[1];
  const token = /<Parameter name="token" value="([^"]+)"/.exec(twiml)?.[1];
  if (!url || !token) throw new Error(`not a stream TwiML: ${twiml}`);
  return { url: url.replace(/&amp;/g, '&'), token };
}

/** A caller who keeps talking: the greeting, a pause, again, until the socket dies or `stop` is called. */
function keepTalking(client: TwilioStreamClient): { stop(): void } {
  const abort = new AbortController();
  void (async () => {
    while (!abort.signal.aborted) {
      await client.speak(HELLO, abort.signal);
      await client.silence(600, abort.signal);
    }
  })();
  return { stop: () => abort.abort() };
}

function crashRecovery(makeBackend: () => Promise<Backend>): void {
  let backend: Backend;
  let twilio: FakeTwilio;
  let dataDir: string;
  let base: string;
  let auth: Record<string, string>;
  let server: ServeProcess | null = null;
  let dispatcher: ServeProcess | null = null;
  let env: Record<string, string>;
  let killedAt = 0;
  let firstEventId = '';
  /** The three calls whose media was live when serve died. */
  const live: Array<{ kind: 'test' | 'inbound' | 'outbound'; id: string; sid: string | null }> = [];
  /** The outbound call Twilio had created when serve died, before serve saw its SID. */
  let unplaced: { id: string; sid: string };
  /** That call as the restarted server first showed it, and Twilio's completed callback for it. */
  let unplacedBefore: ApiCall;
  let unplacedCallback: FakeWebhookDelivery;

  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const getCall = (id: string) => api<ApiCall>('GET', `/v1/calls/${id}`);

  beforeAll(async () => {
    backend = await makeBackend();
    twilio = await startFakeTwilio();
    dataDir = mkdtempSync(join(tmpdir(), 'vocelio-crash-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    env = {
      ...backend.env,
      ...FAST_RECOVERY,
      PUBLIC_URL: base,
      // The test polls calls several times a second for a minute: more than a client's default allowance.
      RATE_LIMIT_PER_MINUTE: '100000',
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      TWILIO_AUTH_TOKEN: twilio.authToken,
      TWILIO_BASE_URL: twilio.baseUrl,
    };
    if (!backend.embedded) dispatcher = worker(dataDir, { env });
    server = serve(dataDir, port, { env });
    await waitForHealth(port, 30_000);
    const key = /vk_[A-Za-z0-9_-]{40}/.exec(server.stderr())?.[0];
    if (!key) throw new Error(`serve printed no API key:\n${server.output()}`);
    auth = { authorization: `Bearer ${key}` };

    const agent = await api<{ id: string }>('POST', '/v1/agents', { name: 'Echo', voice: { provider: 'echo', voiceId: 'echo' } });
    const number = await api<{ id: string }>('POST', '/v1/phone-numbers', { phoneNumber: OUR_NUMBER, agentId: agent.id });
    const stream = await SseClient.open(`${base}/v1/events/stream`, auth);

    // 1. A test call (no carrier leg).
    const test = await api<{ callId: string; streamUrl: string; token: string }>('POST', `/v1/agents/${agent.id}/test-calls`);
    const testClient = new TwilioStreamClient({ url: test.streamUrl, customParameters: { token: test.token } });
    await testClient.connect();
    live.push({ kind: 'test', id: test.callId, sid: null });
    firstEventId = (await stream.waitFor((m) => m.event === 'call.created' && m.json.subject === test.callId, 10_000)).id!;
    stream.close();

    // 2. A caller dialling our number.
    const inbound = await twilio.startInboundCall({ from: '+14155550199', to: OUR_NUMBER });
    const inboundStream = streamOf(inbound.response.body);
    const inboundClient = new TwilioStreamClient({ url: inboundStream.url, customParameters: { token: inboundStream.token }, callSid: inbound.call.sid, accountSid: twilio.accountSid });
    await inboundClient.connect();

    // 3. An outbound call, answered.
    const outbound = await api<{ id: string; providerCallSid: string }>('POST', '/v1/calls', { agentId: agent.id, to: '+14155550123', phoneNumberId: number.id, machineDetection: false });
    const outboundStream = streamOf(await twilio.requestVoiceUrl(outbound.providerCallSid));
    expect((await twilio.sendStatusCallback(outbound.providerCallSid, 'in-progress')).status).toBe(204);
    const outboundClient = new TwilioStreamClient({ url: outboundStream.url, customParameters: { token: outboundStream.token }, callSid: outbound.providerCallSid, accountSid: twilio.accountSid });
    await outboundClient.connect();

    const inboundId = (await api<{ data: Array<{ id: string; providerCallSid: string | null }> }>('GET', '/v1/calls?direction=inbound&limit=10')).data.find((c) => c.providerCallSid === inbound.call.sid)!.id;
    live.push({ kind: 'inbound', id: inboundId, sid: inbound.call.sid }, { kind: 'outbound', id: outbound.id, sid: outbound.providerCallSid });

    // Audio both ways on every call: each caller talks and hears the echo agent answer.
    const clients = [testClient, inboundClient, outboundClient];
    const talkers = clients.map(keepTalking);
    await Promise.all(clients.map((c) => c.waitFor((m) => m.event === 'media', 30_000)));
    await eventually(() => Promise.all(live.map((c) => getCall(c.id))), (calls) => calls.every((c) => c.status === 'in_progress'), Date.now() + 10_000, 'all three calls in_progress');

    // 4. An outbound call Twilio creates, whose answer (and SID) serve never receives.
    const hold = twilio.holdNext((r) => r.method === 'POST' && r.path.endsWith('/Calls.json'));
    const placing = fetch(`${base}/v1/calls`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ agentId: agent.id, to: '+14155550124', phoneNumberId: number.id }) }).catch(() => null);
    const request = await hold.arrived;
    const created = twilio.calls.find((c) => c.params === request.params)!;
    unplaced = { id: new URL(created.url!).searchParams.get('callId')!, sid: created.sid };

    server.child.kill('SIGKILL');
    killedAt = Date.now();
    await server.exited;
    await placing;
    talkers.forEach((t) => t.stop());
    await Promise.all(clients.map((c) => c.closed));

    server = serve(dataDir, port, { env });
    await waitForHealth(port, 30_000);
    // Twilio's last word on the call being placed: it ran (17 s) and completed, and nobody else knew its SID.
    unplacedBefore = await getCall(unplaced.id);
    unplacedCallback = await twilio.sendStatusCallback(unplaced.sid, 'completed', { CallDuration: '17' });
  }, 120_000);

  afterAll(async () => {
    if (server) await stop(server);
    if (dispatcher) await stop(dispatcher);
    await twilio?.close();
    await backend?.dispose();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('ends each live call server_crashed, with a final status, finalized within 60 s of the crash', async () => {
    const calls = await eventually(() => Promise.all(live.map((c) => getCall(c.id))), (all) => all.every((c) => c.finalizedAt), killedAt + RECOVERY_MS, 'every live call finalized');
    for (const call of calls) {
      expect(call).toMatchObject({ endReason: 'server_crashed', finalizedAt: expect.any(String), endedAt: expect.any(String) });
      // The echo agent stores no assistant turn: a crash before the agent said anything is a failed call.
      expect(call.status).toBe('failed');
      expect(Date.parse(call.finalizedAt!) - killedAt).toBeLessThan(RECOVERY_MS);
    }
  }, RECOVERY_MS + 30_000);

  it('attaches the SID of the call being placed at the crash from its signed status callback, and finalizes it with the carrier duration', async () => {
    expect(unplacedBefore).toMatchObject({ status: 'queued', providerCallSid: null, finalizedAt: null });
    expect(unplacedCallback.url).toBe(`${base}/twilio/status?callId=${unplaced.id}`);
    expect(unplacedCallback.status).toBe(204);
    const call = await eventually(() => getCall(unplaced.id), (c) => Boolean(c.finalizedAt), Date.now() + 10_000, 'the unplaced call finalized');
    expect(call).toMatchObject({ providerCallSid: unplaced.sid, status: 'completed', durationSeconds: 17, endReason: 'carrier_completed' });
  }, 30_000);

  it("changes nothing when a crashed call's carrier status arrives after it was finalized", async () => {
    const outbound = live.find((c) => c.kind === 'outbound')!;
    const before = await getCall(outbound.id);
    expect(before.finalizedAt).toEqual(expect.any(String));
    expect((await twilio.sendStatusCallback(outbound.sid!, 'completed', { CallDuration: '9' })).status).toBe(204);
    expect(await getCall(outbound.id)).toEqual(before);
  });

  it('streams every call.ended to a client reconnecting with Last-Event-ID', async () => {
    const stream = await SseClient.open(`${base}/v1/events/stream`, { ...auth, 'last-event-id': firstEventId });
    try {
      expect(stream.status).toBe(200);
      for (const { id } of [...live, unplaced]) {
        const ended = await stream.waitFor((m) => m.event === 'call.ended' && m.id !== undefined && m.json.subject === id, 10_000, `call.ended of ${id}`);
        const call = await getCall(id);
        expect(ended.json.data).toMatchObject({ callId: id, status: call.status, endReason: call.endReason, durationSeconds: call.durationSeconds });
      }
    } finally {
      stream.close();
    }
  }, 30_000);

  it('stores exactly one call.ended per call and dispatches each', async () => {
    const ids = [...live, unplaced].map((c) => c.id);
    // PGlite belongs to one process: read it once serve has let go. PostgreSQL can be read while the worker dispatches.
    if (backend.embedded && server) {
      expect(await stop(server)).toBe(0);
      server = null;
    }
    const read = async (): Promise<EventRow[]> => {
      const database = await backend.open(dataDir);
      try {
        return await database.db.select().from(events).where(and(eq(events.type, 'call.ended'), inArray(events.subject, ids)));
      } finally {
        await database.close();
      }
    };
    const rows = await eventually(read, (rs) => rs.length >= ids.length && rs.every((r) => r.dispatchedAt !== null), Date.now() + 15_000, 'every call.ended dispatched');
    expect(rows.map((r) => r.subject).sort()).toEqual([...ids].sort());
    for (const row of rows) expect(row).toMatchObject({ seq: expect.any(Number), dispatchedAt: expect.any(Date) });
    for (const { id } of live) expect(rows.find((r) => r.subject === id)!.payload).toMatchObject({ endReason: 'server_crashed' });
  }, 30_000);
}

describe('crash recovery: vocelio serve killed with live calls, on the embedded default', () => crashRecovery(embeddedBackend));

const services = Boolean(process.env.DATABASE_URL && process.env.REDIS_URL);
describe.skipIf(!services)(
  `crash recovery: vocelio serve killed with live calls, on PostgreSQL and Redis${services ? '' : ' (skipped: needs DATABASE_URL and REDIS_URL)'}`,
  () => crashRecovery(postgresBackend),
);
