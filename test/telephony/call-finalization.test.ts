import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { and, eq } from 'drizzle-orm';
import { fixture, startConversationRig, type ConversationRig } from './conversation-helpers.js';
import { TwilioStreamClient } from '../../src/simulator/twilio-stream-client.js';
import { events } from '../../src/events/events.table.js';
import type { CallRow, CallStatus } from '../../src/calls/calls.table.js';
import type { FakeTwilio, FakeWebhook } from '../fakes/twilio.js';

// Every way a call can end, in every order, must finalize it exactly once: one `call.ended`, the final
// status, end reason, duration and answer time the lifecycle contract gives that order. The cases below are
// generated from the end signals that apply to each kind of call, not listed by hand.

// Short enough for a fast file, long enough that the steps of one case (milliseconds apart) always land
// inside it: a carrier callback that comes is never mistaken for a lost one.
const GRACE_MS = 1000;
const SWEEP_MS = 100;
/** The billed seconds the fake carrier reports: far from any duration we could compute for a short call. */
const CARRIER_SECONDS = 7;
const CALLER = '+14155550199';
const FINAL_STATUSES: readonly CallStatus[] = ['completed', 'busy', 'no_answer', 'failed', 'canceled'];

type Kind = 'inbound' | 'outbound' | 'test';
/** How the media side closes: Twilio's `stop` message, or the socket closing without one. */
type MediaClose = 'stop' | 'close';
/** An end signal: media close, the carrier's final status callback, or a second delivery of that callback. */
type Signal = 'media' | 'final' | 'duplicate';

interface Case {
  kind: Kind;
  media: MediaClose;
  /** The signals, in the order they arrive. */
  signals: Signal[];
  /** The carrier's final callback never comes: the call finalizes after the grace period. */
  lost: boolean;
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

/** The orders the end signals of one kind of call can arrive in. */
function signalOrders(kind: Kind): Array<{ signals: Signal[]; lost: boolean }> {
  // A test call has no carrier leg: its media closing is its only end signal.
  if (kind === 'test') return [{ signals: ['media'], lost: false }];
  // A duplicate is the same callback delivered again, so it can only follow the first delivery.
  const orders = [...permutations<Signal>(['media', 'final']), ...permutations<Signal>(['media', 'final', 'duplicate'])].filter(
    (o) => !o.includes('duplicate') || o.indexOf('duplicate') > o.indexOf('final'),
  );
  return [...orders.map((signals) => ({ signals, lost: false })), { signals: ['media'], lost: true }];
}

const CASES: Case[] = (['inbound', 'outbound', 'test'] as const).flatMap((kind) =>
  (['stop', 'close'] as const).flatMap((media) => signalOrders(kind).map((o) => ({ kind, media, ...o }))),
);

const describeCase = (c: Case): string =>
  [...c.signals.map((s) => (s === 'media' ? `media ${c.media}` : s === 'final' ? 'final status' : 'duplicated status')), ...(c.lost ? ['final status lost'] : [])].join(' → ');

/** The end reason the first end signal records, when nothing else was recorded before it. */
const reasonOfFirst = (c: Case): string => {
  if (c.signals[0] === 'media') return c.media === 'stop' ? 'stream_stopped' : 'socket_closed';
  return 'carrier_completed';
};

/** The TwiML `<Stream>` URL and token. */
function streamOf(twiml: string): { url: string; token: string } {
  const url = /<Stream url="([^"]+)"/.exec(twiml)?.[1];
  const token = /<Parameter name="token" value="([^"]+)"/.exec(twiml)?.[1];
  if (!url || !token) throw new Error(`not a stream TwiML: ${twiml}`);
  return { url: url.replace(/&amp;/g, '&'), token };
}

/** A call with its media stream running. */
interface LiveCall {
  kind: Kind;
  callId: string;
  /** The carrier's call SID; null for a test call. */
  sid: string | null;
  client: TwilioStreamClient;
}

describe('call finalization: one call.ended, whatever the order of the end signals', () => {
  let rig: ConversationRig;
  let twilio: FakeTwilio;
  let echoAgent: string;
  let echoNumber: { id: string; phoneNumber: string };
  /** Every call a case finalized, to check once more at the end that none was finalized twice. */
  const finalized: string[] = [];

  beforeAll(async () => {
    rig = await startConversationRig({
      twilio: true,
      deepgram: { transcripts: ['I have a question about my bill.'] },
      env: { CALL_FINALIZE_GRACE_MS: String(GRACE_MS), CALL_SWEEP_MS: String(SWEEP_MS) },
    });
    twilio = rig.twilio!;
    echoAgent = await rig.createAgent({ name: 'Echo', voice: { provider: 'echo', voiceId: 'echo' } });
    echoNumber = await buyNumber(echoAgent);
  }, 60_000);
  afterAll(async () => rig?.close());

  // ---- driving calls ----

  async function buyNumber(agentId: string): Promise<{ id: string; phoneNumber: string }> {
    const owned = new Set(twilio.numbers.map((n) => n.phoneNumber));
    const free = twilio.available.find((n) => n.phoneNumber.startsWith('+1') && n.capabilities?.voice !== false && !owned.has(n.phoneNumber))!;
    const res = await rig.t.as(rig.org.keys.admin, { method: 'POST', url: '/v1/phone-numbers', payload: { phoneNumber: free.phoneNumber, agentId } });
    if (res.statusCode !== 201) throw new Error(`number: ${res.body}`);
    return res.json();
  }

  const row = (callId: string): Promise<CallRow> => rig.t.app.calls.get(rig.org.id, callId);

  async function waitForRow(callId: string, ok: (r: CallRow) => boolean, what: string, timeoutMs = 5000): Promise<CallRow> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await row(callId);
      if (ok(r)) return r;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(r)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  const durable = (callId: string, type: string) =>
    rig.t.database.db.select().from(events).where(and(eq(events.subject, callId), eq(events.type, type)));

  /** Places an outbound call through the API; the fake carrier has it queued. */
  async function placeOutbound(agentId = echoAgent, fields: Record<string, unknown> = {}): Promise<{ callId: string; sid: string }> {
    const res = await rig.t.as(rig.org.keys.member, {
      method: 'POST',
      url: '/v1/calls',
      payload: { agentId, to: '+14155550123', phoneNumberId: echoNumber.id, machineDetection: false, ...fields },
    });
    if (res.statusCode !== 201) throw new Error(`outbound: ${res.body}`);
    const call = res.json<{ id: string; providerCallSid: string }>();
    return { callId: call.id, sid: call.providerCallSid };
  }

  /** Connects Twilio's side of the stream and waits until a session runs the call (or ran it: one may end in ms). */
  async function connect(kind: Kind, callId: string, sid: string | null, url: string, token: string): Promise<LiveCall> {
    const client = new TwilioStreamClient({ url, customParameters: { token }, ...(sid ? { callSid: sid } : {}) });
    await client.connect();
    await waitForRow(callId, (r) => r.startedAt !== null && (rig.t.app.callSessions.has(callId) || r.mediaEndedAt !== null), 'the stream to start');
    return { kind, callId, sid, client };
  }

  /** Starts a call of `kind` to `agentId` and brings its media stream up, as the carrier (or simulator) would. */
  async function startCall(kind: Kind, agentId = echoAgent, number = echoNumber): Promise<LiveCall> {
    if (kind === 'test') {
      const { callId, client } = await rig.testCall(agentId);
      await client.connect();
      await waitForRow(callId, (r) => r.startedAt !== null && rig.t.app.callSessions.has(callId), 'the stream to start');
      return { kind, callId, sid: null, client };
    }
    if (kind === 'inbound') {
      const { call, response } = await twilio.startInboundCall({ from: CALLER, to: number.phoneNumber });
      const { url, token } = streamOf(response.body);
      const stored = await rig.t.app.calls.byProviderSid(call.sid);
      return connect(kind, stored!.id, call.sid, url, token);
    }
    const { callId, sid } = await placeOutbound(agentId);
    // The callee answers: Twilio reports it and fetches the TwiML.
    expect((await twilio.sendStatusCallback(sid, 'in-progress')).status).toBe(204);
    const { url, token } = streamOf(await twilio.requestVoiceUrl(sid));
    return connect(kind, callId, sid, url, token);
  }

  /** Closes the media side the given way and waits until the server has recorded it. */
  async function closeMedia(call: LiveCall, how: MediaClose): Promise<CallRow> {
    if (how === 'stop') call.client.stop();
    else call.client.close();
    await call.client.closed;
    return waitForRow(call.callId, (r) => r.mediaEndedAt !== null, 'the media end to be recorded');
  }

  const deliver = async (webhook: FakeWebhook): Promise<void> => {
    expect((await twilio.deliver(webhook)).status).toBe(204);
  };

  const waitFinalized = (callId: string, timeoutMs = GRACE_MS + 5000): Promise<CallRow> =>
    waitForRow(callId, (r) => r.finalizedAt !== null, 'finalization', timeoutMs);

  /** What must hold at any moment: a final status exactly when finalized, never two `call.ended`. */
  async function expectConsistent(callId: string): Promise<CallRow> {
    for (;;) {
      const r = await row(callId);
      const ended = (await durable(callId, 'call.ended')).length;
      // A finalization that committed between the two reads: read again rather than compare two moments.
      if ((await row(callId)).finalizedAt?.getTime() !== r.finalizedAt?.getTime()) continue;
      expect(FINAL_STATUSES.includes(r.status), `status ${r.status} with finalizedAt ${String(r.finalizedAt)}`).toBe(r.finalizedAt !== null);
      expect(ended).toBe(r.finalizedAt ? 1 : 0);
      return r;
    }
  }

  /** Exactly one `call.ended`, whose payload is the finalized row; the API shows the same. */
  async function expectOneEnd(callId: string): Promise<CallRow> {
    const r = await row(callId);
    expect(r.finalizedAt).not.toBeNull();
    expect(FINAL_STATUSES).toContain(r.status);
    const ended = await durable(callId, 'call.ended');
    expect(ended).toHaveLength(1);
    expect(ended[0]!.payload).toMatchObject({
      callId,
      status: r.status,
      endReason: r.endReason,
      endedAt: r.endedAt!.toISOString(),
      answeredAt: r.answeredAt?.toISOString() ?? null,
      durationSeconds: r.durationSeconds,
    });
    const api = await rig.t.as(rig.org.keys.viewer, { method: 'GET', url: `/v1/calls/${callId}` });
    expect(api.json()).toMatchObject({ status: r.status, endReason: r.endReason, finalizedAt: r.finalizedAt!.toISOString() });
    // An answered call says so once, an unanswered one never.
    expect(await durable(callId, 'call.answered')).toHaveLength(r.answeredAt ? 1 : 0);
    if (r.answeredAt) expect(r.answeredAt.getTime()).toBeLessThanOrEqual(r.endedAt!.getTime());
    finalized.push(callId);
    return r;
  }

  // ---- the table ----

  describe.each(['inbound', 'outbound', 'test'] as const)('%s call', (kind) => {
    it.each(CASES.filter((c) => c.kind === kind).map((c) => [describeCase(c), c] as const))('%s', async (_name, c) => {
      const call = await startCall(kind);
      let final: FakeWebhook | null = null;
      let carrierSpoke = false;
      for (const [i, signal] of c.signals.entries()) {
        if (signal === 'media') {
          await closeMedia(call, c.media);
        } else if (signal === 'final') {
          final = twilio.prepareStatusCallback(call.sid!, 'completed', { CallDuration: String(CARRIER_SECONDS) });
          await deliver(final);
          carrierSpoke = true;
        } else {
          await deliver(final!);
        }
        const now = await expectConsistent(call.callId);
        if (i === 0) expect(now.endedAt).not.toBeNull();
        // A call with a carrier leg waits for the carrier's word (or the grace period) after its media closed.
        if (signal === 'media' && kind !== 'test' && !carrierSpoke) expect(now.finalizedAt).toBeNull();
      }

      await waitFinalized(call.callId);
      const r = await expectOneEnd(call.callId);
      expect(r.status).toBe('completed');
      expect(r.endReason).toBe(reasonOfFirst(c));
      expect(r.mediaEndedAt).not.toBeNull();
      // Answered when the stream started, or earlier when the carrier said so (outbound's in-progress).
      expect(r.answeredAt).not.toBeNull();
      if (kind === 'outbound') expect(r.answeredAt!.getTime()).toBeLessThanOrEqual(r.startedAt!.getTime());
      else expect(r.answeredAt!.getTime()).toBe(r.startedAt!.getTime());
      if (carrierSpoke) {
        expect(r.durationSeconds).toBe(CARRIER_SECONDS);
        expect(r.carrierStatus).toBe('completed');
      } else {
        expect(r.durationSeconds).toBe(Math.ceil((r.endedAt!.getTime() - r.answeredAt!.getTime()) / 1000));
      }
      const waited = r.finalizedAt!.getTime() - r.endedAt!.getTime();
      if (c.lost) expect(waited).toBeGreaterThanOrEqual(GRACE_MS - 20);
      else if (kind !== 'test') expect(waited).toBeLessThan(GRACE_MS);
    });
  });

  // ---- callbacks racing the REST answer ----

  it('applies status and AMD callbacks that arrive before the create request returns, and attaches the SID', async () => {
    const hold = twilio.holdNext((req) => req.method === 'POST' && req.path.endsWith('/Calls.json'));
    const placing = rig.t.as(rig.org.keys.member, {
      method: 'POST',
      url: '/v1/calls',
      payload: { agentId: echoAgent, to: '+14155550123', phoneNumberId: echoNumber.id, machineDetection: true },
    });
    await hold.arrived;
    // Twilio has placed the call; only its answer to our request is still on the way.
    const placed = twilio.calls.at(-1)!;
    const sid = placed.sid;
    expect(placed.statusCallback).toMatch(/\/twilio\/status\?callId=call_/);
    expect(placed.asyncAmdStatusCallback).toMatch(/\/twilio\/amd\?callId=call_/);
    const callId = new URL(placed.statusCallback!).searchParams.get('callId')!;

    for (const status of ['initiated', 'ringing', 'in-progress']) await deliver(twilio.prepareStatusCallback(sid, status));
    expect((await twilio.sendAmdCallback(sid, 'human')).status).toBe(204);
    const early = await row(callId);
    expect(early).toMatchObject({ providerCallSid: sid, status: 'in_progress', answeredBy: 'human', finalizedAt: null });
    expect(early.answeredAt).not.toBeNull();

    hold.release();
    const res = await placing;
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ id: callId, providerCallSid: sid, status: 'in_progress' });

    // Answered, but Twilio could not run our stream: the carrier's word alone ends it.
    await deliver(twilio.prepareStatusCallback(sid, 'completed', { CallDuration: String(CARRIER_SECONDS) }));
    const r = await expectOneEnd(callId);
    expect(r).toMatchObject({ status: 'completed', endReason: 'carrier_completed', durationSeconds: CARRIER_SECONDS, answeredBy: 'human' });
  });

  it('finalizes a call the carrier refused to place at once, failed with error', async () => {
    twilio.failNext({ status: 400, code: 21215, message: 'Geo permissions do not allow this destination', method: 'POST', path: '/Calls.json' });
    const res = await rig.t.as(rig.org.keys.member, { method: 'POST', url: '/v1/calls', payload: { agentId: echoAgent, to: '+14155550124', phoneNumberId: echoNumber.id } });
    expect(res.statusCode).toBe(422);
    const [call] = await rig.t.app.calls.list(rig.org.id, { limit: 1 });
    expect(call!.toNumber).toBe('+14155550124');
    const r = await expectOneEnd(call!.id);
    expect(r).toMatchObject({ status: 'failed', endReason: 'error', answeredAt: null, durationSeconds: 0 });
  });

  it('records an API hangup as the cause though the stream stops before the carrier answers the hangup', async () => {
    const call = await startCall('outbound');
    const hold = twilio.holdNext((req) => req.method === 'POST' && req.path.endsWith(`/Calls/${call.sid}.json`) && req.params.Status === 'completed');
    const hangup = rig.t.as(rig.org.keys.member, { method: 'POST', url: `/v1/calls/${call.callId}/hangup` });
    await hold.arrived;
    // Twilio hung up: its stream stops before its REST answer reaches us.
    await closeMedia(call, 'stop');
    hold.release();
    const res = await hangup;
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ endReason: 'hangup_requested' });
    await deliver(twilio.prepareStatusCallback(call.sid!, 'completed', { CallDuration: String(CARRIER_SECONDS) }));
    const r = await expectOneEnd(call.callId);
    expect(r).toMatchObject({ status: 'completed', endReason: 'hangup_requested', durationSeconds: CARRIER_SECONDS });
  });

  it("records a transfer as the cause though the stream stops before the carrier answers the transfer's TwiML", async () => {
    const agentId = await rig.createAgent({ tools: [{ type: 'builtin', name: 'transfer_call', destinations: [{ name: 'billing', number: '+14155550111', description: 'bills and refunds' }] }] });
    rig.openai.setRespond(() => ({ text: 'Let me put you through to billing.', toolCalls: [{ name: 'transfer_call', arguments: { destination: 'billing', summary: 'Caller asks about a bill.' } }] }));
    const call = await startCall('inbound', agentId, await buyNumber(agentId));
    const hold = twilio.holdNext((req) => req.method === 'POST' && req.path.endsWith(`/Calls/${call.sid}.json`) && typeof req.params.Twiml === 'string');
    await call.client.speak(fixture('hello.ulaw'));
    const update = await hold.arrived;
    expect(update.params.Twiml).toContain('+14155550111');
    // Twilio runs the new TwiML at once, which ends our stream; its REST answer comes after.
    await closeMedia(call, 'stop');
    hold.release();
    await deliver(twilio.prepareStatusCallback(call.sid!, 'completed', { CallDuration: String(CARRIER_SECONDS) }));
    const r = await waitFinalized(call.callId);
    expect(r).toMatchObject({ status: 'completed', endReason: 'transferred', transfer: { to: '+14155550111' }, durationSeconds: CARRIER_SECONDS });
    await expectOneEnd(call.callId);
  }, 30_000);

  // ---- failures: did the caller hear the agent? ----

  it('fails a call whose providers failed before the caller heard the agent, though the carrier says completed', async () => {
    const agentId = await rig.createAgent({ firstMessage: 'Hello, Vocelio Bistro.', voice: { provider: 'elevenlabs', voiceId: 'rachel' } });
    rig.elevenlabs.setOptions({ fail: { status: 401 } });
    try {
      const call = await startCall('inbound', agentId, await buyNumber(agentId));
      await call.client.closed;
      await waitForRow(call.callId, (r) => r.mediaEndedAt !== null, 'the media end');
      await deliver(twilio.prepareStatusCallback(call.sid!, 'completed', { CallDuration: String(CARRIER_SECONDS) }));
      const r = await waitFinalized(call.callId);
      expect(r).toMatchObject({ status: 'failed', endReason: 'provider_error', durationSeconds: CARRIER_SECONDS });
      expect((await rig.turns(call.callId)).filter((t) => t.role === 'assistant')).toEqual([]);
      await expectOneEnd(call.callId);
    } finally {
      rig.elevenlabs.setOptions({ fail: undefined });
    }
  }, 30_000);

  it('completes a call that ended on a provider error after the caller heard the agent, with its transcript', async () => {
    const agentId = await rig.createAgent({ firstMessage: 'Hello, Vocelio Bistro.' });
    rig.openai.setRespond(() => ({ error: { status: 500, message: 'model crashed' } }));
    const call = await startCall('inbound', agentId, await buyNumber(agentId));
    await call.client.waitFor((m) => m.event === 'mark', 8000);
    await call.client.speak(fixture('hello.ulaw'));
    await call.client.closed;
    await waitForRow(call.callId, (r) => r.mediaEndedAt !== null, 'the media end', 15_000);
    await deliver(twilio.prepareStatusCallback(call.sid!, 'completed', { CallDuration: String(CARRIER_SECONDS) }));
    const r = await waitFinalized(call.callId);
    expect(r).toMatchObject({ status: 'completed', endReason: 'provider_error' });
    expect((await rig.turns(call.callId)).some((t) => t.role === 'assistant' && t.kind === 'first_message')).toBe(true);
    await expectOneEnd(call.callId);
    expect(await durable(call.callId, 'call.transcript.ready')).toHaveLength(1);
  }, 30_000);

  // ---- late callbacks ----

  it('keeps the answer time of a finalized call when a late in-progress callback arrives', async () => {
    const { callId, sid } = await placeOutbound();
    // Twilio's in-progress report is on its way, slowly; the stream starts meanwhile.
    const late = twilio.prepareStatusCallback(sid, 'in-progress');
    const { url, token } = streamOf(await twilio.requestVoiceUrl(sid));
    const call = await connect('outbound', callId, sid, url, token);
    await closeMedia(call, 'stop');
    await deliver(twilio.prepareStatusCallback(sid, 'completed', { CallDuration: String(CARRIER_SECONDS) }));
    const before = await waitFinalized(callId);
    expect(before.answeredAt!.getTime()).toBe(before.startedAt!.getTime());
    await deliver(late);
    const after = await expectOneEnd(callId);
    const outcome = (r: CallRow) => [r.status, r.endReason, r.durationSeconds, r.answeredAt, r.endedAt, r.finalizedAt];
    expect(outcome(after)).toEqual(outcome(before));
  });

  it('leaves a call that was never answered without an answer time when a late in-progress callback arrives', async () => {
    const { callId, sid } = await placeOutbound();
    const late = twilio.prepareStatusCallback(sid, 'in-progress');
    await deliver(twilio.prepareStatusCallback(sid, 'no-answer'));
    await deliver(late);
    const r = await expectOneEnd(callId);
    expect(r).toMatchObject({ status: 'no_answer', endReason: 'not_answered', answeredAt: null, durationSeconds: 0 });
  });

  it('does not answer a call hung up while ringing when an in-progress callback arrives before the carrier confirms', async () => {
    const { callId, sid } = await placeOutbound();
    const ringing = twilio.prepareStatusCallback(sid, 'ringing');
    await deliver(ringing);
    // The callee picked up just as we hung up: Twilio's in-progress report crosses our hangup.
    const late: FakeWebhook = { ...ringing, params: { ...ringing.params, CallStatus: 'in-progress', SequenceNumber: String(twilio.call(sid).nextSequence++) } };
    const res = await rig.t.as(rig.org.keys.member, { method: 'POST', url: `/v1/calls/${callId}/hangup` });
    expect(res.json()).toMatchObject({ endReason: 'hangup_requested', endedAt: expect.any(String) });
    expect(await expectConsistent(callId)).toMatchObject({ finalizedAt: null });
    await deliver(late);
    expect((await row(callId)).answeredAt).toBeNull();
    await deliver(twilio.prepareStatusCallback(sid, 'canceled'));
    const r = await expectOneEnd(callId);
    expect(r).toMatchObject({ status: 'canceled', endReason: 'hangup_requested', answeredAt: null, durationSeconds: 0 });
  });

  it('finalizes a call hung up while ringing once the grace period passed, when the carrier never confirms', async () => {
    const { callId, sid } = await placeOutbound();
    await deliver(twilio.prepareStatusCallback(sid, 'ringing'));
    expect((await rig.t.as(rig.org.keys.member, { method: 'POST', url: `/v1/calls/${callId}/hangup` })).statusCode).toBe(200);
    const r = await waitFinalized(callId);
    expect(r).toMatchObject({ status: 'no_answer', endReason: 'hangup_requested', answeredAt: null, durationSeconds: 0 });
    expect(r.finalizedAt!.getTime() - r.endedAt!.getTime()).toBeGreaterThanOrEqual(GRACE_MS - 20);
    await expectOneEnd(callId);
  });

  // ---- races ----

  it('finalizes once when the media close and the final status arrive together', async () => {
    const call = await startCall('inbound');
    const final = twilio.prepareStatusCallback(call.sid!, 'completed', { CallDuration: String(CARRIER_SECONDS) });
    await Promise.all([closeMedia(call, 'stop'), deliver(final), deliver(final)]);
    const r = await waitFinalized(call.callId);
    expect(r).toMatchObject({ status: 'completed', durationSeconds: CARRIER_SECONDS });
    await expectOneEnd(call.callId);
  });

  it('finalizes once when sweeps race over a call whose final status was lost', async () => {
    const call = await startCall('outbound');
    await closeMedia(call, 'close');
    const sweep = rig.t.app.lifecycleSweep;
    // Several sweeps at a time, over and over, across the moment the grace period runs out (the app's own
    // periodic sweep joins in).
    for (let r = await row(call.callId); r.finalizedAt === null; r = await row(call.callId)) {
      await Promise.all([sweep.run(), sweep.run(), sweep.run()]);
    }
    const r = await expectOneEnd(call.callId);
    expect(r).toMatchObject({ status: 'completed', endReason: 'socket_closed' });
    expect(r.finalizedAt!.getTime() - r.endedAt!.getTime()).toBeGreaterThanOrEqual(GRACE_MS - 20);
  });

  it('never finalizes any of these calls a second time', async () => {
    await new Promise((resolve) => setTimeout(resolve, SWEEP_MS * 3));
    for (const callId of finalized) expect((await durable(callId, 'call.ended')).length, callId).toBe(1);
  });
});
