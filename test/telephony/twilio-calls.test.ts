import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, mediaFrames, startConversationRig, type ConversationRig } from './conversation-helpers.js';
import { TwilioStreamClient } from '../../src/simulator/twilio-stream-client.js';
import { LINES } from '../../src/telephony/webhooks/routes.js';
import type { FakeTwilio } from '../fakes/twilio.js';

/** The stream URL and token of a `<Connect><Stream>` TwiML answer. */
function streamOf(twiml: string): { url: string; token: string } {
  const url = /<Stream url="([^"]+)"/.exec(twiml)?.[1];
  const token = /<Parameter name="token" value="([^"]+)"/.exec(twiml)?.[1];
  if (!url || !token) throw new Error(`not a stream TwiML: ${twiml}`);
  return { url: url.replace(/&amp;/g, '&'), token };
}

const until = async (check: () => boolean | Promise<boolean>, ms = 8000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
};

// Real twilio SDK -> fake Twilio REST; the fake posts signed webhooks back to the real server, whose TwiML
// the simulator follows onto the real media socket: Twilio's side of a phone call, end to end.
describe('phone calls through Twilio', () => {
  let rig: ConversationRig;
  let twilio: FakeTwilio;
  let number: { id: string; phoneNumber: string };
  let agentId: string;
  const CALLER = '+14155550199';

  beforeAll(async () => {
    rig = await startConversationRig({ twilio: true, deepgram: { transcripts: ['I have a question about my bill.'] } });
    twilio = rig.twilio!;
    agentId = await rig.createAgent({ firstMessage: 'Hello, Vocelio Bistro.' });
    const search = await rig.t.as(rig.org.keys.member, { method: 'GET', url: '/v1/phone-numbers/available?country=US&areaCode=415' });
    const bought = await rig.t.as(rig.org.keys.admin, { method: 'POST', url: '/v1/phone-numbers', payload: { phoneNumber: search.json().data[0].phoneNumber, agentId } });
    expect(bought.statusCode).toBe(201);
    number = bought.json();
  }, 60_000);
  afterAll(async () => rig?.close());

  const callsOf = async () => (await rig.t.as(rig.org.keys.viewer, { method: 'GET', url: '/v1/calls?limit=100' })).json<{ data: Array<{ id: string }> }>().data;
  const placeOutbound = async (fields: Record<string, unknown> = {}, key?: string) => {
    const res = await rig.t.as(rig.org.keys.member, {
      method: 'POST',
      url: '/v1/calls',
      headers: key ? { 'idempotency-key': key } : {},
      payload: { agentId, to: '+14155550123', phoneNumberId: number.id, ...fields },
    });
    return res;
  };
  const answer = async (callSid: string) => {
    const { url, token } = streamOf(await twilio.requestVoiceUrl(callSid));
    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    return client;
  };

  it('answers a signed inbound call with TwiML whose stream opens a working conversation', async () => {
    const { call: fakeCall, response } = await twilio.startInboundCall({ from: CALLER, to: number.phoneNumber });
    expect(response.status).toBe(200);
    expect(response.contentType).toMatch(/text\/xml/);
    const { url, token } = streamOf(response.body);
    expect(url).toBe(`${rig.publicUrl.replace('http', 'ws')}/twilio/media`);

    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    await client.waitFor((m) => m.event === 'mark', 8000);
    const stored = await rig.t.app.calls.byProviderSid(fakeCall.sid);
    expect(stored).toMatchObject({ direction: 'inbound', fromNumber: CALLER, toNumber: number.phoneNumber, phoneNumberId: number.id, agentId, status: 'in_progress' });
    const turns = await rig.waitForTurns(stored!.id, (ts) => ts.some((x) => x.kind === 'first_message' && x.endedAt !== null));
    expect(turns[0]!.text).toBe('Hello, Vocelio Bistro.');
    client.stop();
    await client.closed;
  }, 30_000);

  it('refuses unsigned and mis-signed webhooks with 403 and creates nothing', async () => {
    const before = (await callsOf()).length;
    const params = { CallSid: `CA${'0'.repeat(32)}`, From: CALLER, To: number.phoneNumber, CallStatus: 'ringing', Direction: 'inbound', AccountSid: twilio.accountSid };
    const unsigned = await twilio.postWebhook(`${rig.publicUrl}/twilio/voice`, params, { signature: null });
    const wrongKey = await twilio.postWebhook(`${rig.publicUrl}/twilio/voice`, params, { authToken: 'f'.repeat(32) });
    const wrongStatus = await twilio.postWebhook(`${rig.publicUrl}/twilio/status`, params, { signature: 'bm90IGEgc2lnbmF0dXJl' });
    expect([unsigned.status, wrongKey.status, wrongStatus.status]).toEqual([403, 403, 403]);
    expect(JSON.parse(unsigned.body)).toMatchObject({ error: { code: 'forbidden' } });
    expect((await callsOf()).length).toBe(before);
    expect(await rig.t.app.calls.byProviderSid(params.CallSid)).toBeNull();
  });

  it('tells a caller of a number with no agent that it is not in service, and hangs up', async () => {
    const res = await rig.t.as(rig.org.keys.admin, { method: 'POST', url: '/v1/phone-numbers', payload: { phoneNumber: twilio.available.find((n) => n.phoneNumber !== number.phoneNumber && n.capabilities?.voice !== false)!.phoneNumber } });
    const spare = res.json<{ phoneNumber: string }>();
    const { response } = await twilio.startInboundCall({ from: CALLER, to: spare.phoneNumber });
    expect(response.status).toBe(200);
    expect(response.body).toContain(LINES.notInService);
    expect(response.body).toContain('<Hangup/>');
  });

  it('places an outbound call with our webhooks and AMD, once per Idempotency-Key', async () => {
    const first = await placeOutbound({ variables: { name: 'Ada' } }, 'order-1');
    expect(first.statusCode).toBe(201);
    const call = first.json<{ id: string; providerCallSid: string; status: string }>();
    const placed = twilio.call(call.providerCallSid);
    expect(placed.params).toMatchObject({
      To: '+14155550123',
      From: number.phoneNumber,
      Url: `${rig.publicUrl}/twilio/voice?callId=${call.id}`,
      StatusCallback: `${rig.publicUrl}/twilio/status?callId=${call.id}`,
      MachineDetection: 'DetectMessageEnd',
      AsyncAmd: 'true',
      AsyncAmdStatusCallback: `${rig.publicUrl}/twilio/amd?callId=${call.id}`,
    });
    expect(placed.statusCallbackEvents).toEqual(expect.arrayContaining(['initiated', 'ringing', 'answered', 'completed']));

    const again = await placeOutbound({ variables: { name: 'Ada' } }, 'order-1');
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(call.id);
    expect(twilio.calls.filter((c) => c.params.Url === placed.params.Url)).toHaveLength(1);
  });

  it('ends in one correct record when status callbacks arrive twice and out of order', async () => {
    const call = (await placeOutbound()).json<{ id: string; providerCallSid: string }>();
    const sid = call.providerCallSid;
    const hooks = [
      twilio.prepareStatusCallback(sid, 'initiated'),
      twilio.prepareStatusCallback(sid, 'ringing'),
      twilio.prepareStatusCallback(sid, 'in-progress'),
      twilio.prepareStatusCallback(sid, 'completed', { CallDuration: '42' }),
    ];
    // Completed first, then everything again in a scrambled order.
    for (const i of [3, 1, 0, 2, 2, 3, 0, 1]) expect((await twilio.deliver(hooks[i]!)).status).toBe(204);
    const stored = await rig.t.app.calls.get(rig.org.id, call.id);
    expect(stored).toMatchObject({ status: 'completed', durationSeconds: 42, endReason: 'carrier_completed' });
    expect(stored.answeredAt).not.toBeNull();
    expect(stored.endedAt).not.toBeNull();
    expect(stored.answeredAt!.getTime()).toBeLessThanOrEqual(stored.endedAt!.getTime());
  });

  it('never sets answeredAt after endedAt when the in-progress callback arrives after completed', async () => {
    const call = (await placeOutbound({ machineDetection: false })).json<{ id: string; providerCallSid: string }>();
    const answered = twilio.prepareStatusCallback(call.providerCallSid, 'in-progress');
    const completed = twilio.prepareStatusCallback(call.providerCallSid, 'completed', { CallDuration: '42' });
    expect((await twilio.deliver(completed)).status).toBe(204);
    await new Promise((r) => setTimeout(r, 20));
    expect((await twilio.deliver(answered)).status).toBe(204);
    const stored = await rig.t.app.calls.get(rig.org.id, call.id);
    expect(stored.status).toBe('completed');
    // Answered 42 billed seconds before the end: the only answer time the carrier's reports support.
    expect(stored.endedAt!.getTime() - stored.answeredAt!.getTime()).toBe(42_000);
  });

  it('keeps answeredAt empty on a no-answer call when a late in-progress callback arrives', async () => {
    const call = (await placeOutbound({ machineDetection: false })).json<{ id: string; providerCallSid: string }>();
    const answered = twilio.prepareStatusCallback(call.providerCallSid, 'in-progress');
    const noAnswer = twilio.prepareStatusCallback(call.providerCallSid, 'no-answer');
    expect((await twilio.deliver(noAnswer)).status).toBe(204);
    expect((await twilio.deliver(answered)).status).toBe(204);
    const stored = await rig.t.app.calls.get(rig.org.id, call.id);
    expect(stored).toMatchObject({ status: 'no_answer', endReason: 'not_answered', answeredAt: null });
    expect(stored.endedAt).not.toBeNull();
  });

  it('AMD human: the agent holds its first message until the verdict, then speaks first', async () => {
    const call = (await placeOutbound()).json<{ id: string; providerCallSid: string }>();
    const client = await answer(call.providerCallSid);
    await client.silence(1200);
    expect(mediaFrames(client)).toHaveLength(0);
    await twilio.sendAmdCallback(call.providerCallSid, 'human');
    await client.waitFor((m) => m.event === 'mark', 8000);
    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.kind === 'first_message' && x.endedAt !== null));
    expect(turns[0]!.text).toBe('Hello, Vocelio Bistro.');
    expect((await rig.t.app.calls.get(rig.org.id, call.id)).answeredBy).toBe('human');
    client.stop();
    await client.closed;
  }, 30_000);

  it('AMD machine: leaves the voicemail message after the beep, then hangs up at Twilio', async () => {
    const voicemailAgent = await rig.createAgent({ firstMessage: 'Hello!', voicemail: { action: 'leave_message', message: 'Hi {{name}}, please call us back.' } });
    const call = (await placeOutbound({ agentId: voicemailAgent, variables: { name: 'Ada' } })).json<{ id: string; providerCallSid: string }>();
    const client = await answer(call.providerCallSid);
    await twilio.sendAmdCallback(call.providerCallSid, 'machine_end_beep');
    const ended = await rig.waitForEnd(call.id, 15_000);
    expect(ended).toMatchObject({ endReason: 'voicemail', answeredBy: 'machine' });
    const turns = await rig.turns(call.id);
    expect(turns.map((x) => [x.kind, x.text])).toEqual([['goodbye', 'Hi Ada, please call us back.']]);
    expect(mediaFrames(client).length).toBeGreaterThan(10);
    await until(() => twilio.call(call.providerCallSid).updates.some((u) => u.Status === 'completed'));
    await client.closed;
  }, 30_000);

  it('AMD machine with the hang-up behaviour ends the call without a word', async () => {
    const call = (await placeOutbound()).json<{ id: string; providerCallSid: string }>();
    const client = await answer(call.providerCallSid);
    await twilio.sendAmdCallback(call.providerCallSid, 'machine_end_silence');
    const ended = await rig.waitForEnd(call.id);
    expect(ended.endReason).toBe('voicemail');
    expect(mediaFrames(client)).toHaveLength(0);
    await client.closed;
  }, 30_000);

  it('transfers the caller to a configured destination, with the summary whispered to the person answering', async () => {
    const transferAgent = await rig.createAgent({ tools: [{ type: 'builtin', name: 'transfer_call', destinations: [{ name: 'billing', number: '+14155550111', description: 'bills and refunds' }] }] });
    await rig.t.as(rig.org.keys.member, { method: 'PATCH', url: `/v1/phone-numbers/${number.id}`, payload: { agentId: transferAgent } });
    rig.openai.setRespond((req) => {
      const tools = (req.body.tools as Array<{ function: { name: string; description: string } }> | undefined) ?? [];
      if (!tools.some((t) => t.function.name === 'transfer_call')) return { text: 'No transfer tool was offered.' };
      return { text: 'Let me put you through to billing.', toolCalls: [{ name: 'transfer_call', arguments: { destination: 'billing', summary: 'Caller asks about a bill.' } }] };
    });
    const { call: fakeCall, response } = await twilio.startInboundCall({ from: CALLER, to: number.phoneNumber });
    const { url, token } = streamOf(response.body);
    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    await client.speak(fixture('hello.ulaw'));
    const stored = await rig.t.app.calls.byProviderSid(fakeCall.sid);
    const ended = await rig.waitForEnd(stored!.id, 15_000);
    expect(ended).toMatchObject({ endReason: 'transferred', transfer: { to: '+14155550111', summary: 'Caller asks about a bill.' } });
    const update = twilio.call(fakeCall.sid).updates.find((u) => typeof u.Twiml === 'string')!;
    expect(update.Twiml).toContain('+14155550111');
    expect(update.Twiml).toContain(`/twilio/whisper?callId=${stored!.id}`);
    const whisper = await twilio.postWebhook(`${rig.publicUrl}/twilio/whisper?callId=${stored!.id}`, { CallSid: fakeCall.sid, AccountSid: twilio.accountSid });
    expect(whisper.body).toContain('Caller asks about a bill.');
    await rig.t.as(rig.org.keys.member, { method: 'PATCH', url: `/v1/phone-numbers/${number.id}`, payload: { agentId } });
    await client.closed;
  }, 30_000);

  it('hangs up a live call through the API, at Twilio and on the media stream', async () => {
    const call = (await placeOutbound({ machineDetection: false })).json<{ id: string; providerCallSid: string }>();
    const client = await answer(call.providerCallSid);
    await until(() => rig.t.app.callSessions.has(call.id));
    const res = await rig.t.as(rig.org.keys.member, { method: 'POST', url: `/v1/calls/${call.id}/hangup` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: call.id, endReason: 'hangup_requested' });
    expect(twilio.call(call.providerCallSid).updates).toContainEqual(expect.objectContaining({ Status: 'completed' }));
    await client.closed;
    const again = await rig.t.as(rig.org.keys.member, { method: 'POST', url: `/v1/calls/${call.id}/hangup` });
    expect(again.statusCode).toBe(409);
  }, 30_000);

  it('shows a call with its transcript and latencies, and deletes it down to a tombstone', async () => {
    rig.openai.setRespond(() => ({ text: 'Happy to help.' }));
    const { call: fakeCall, response } = await twilio.startInboundCall({ from: CALLER, to: number.phoneNumber });
    const { url, token } = streamOf(response.body);
    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    await client.speak(fixture('hello.ulaw'));
    await client.waitFor((m) => m.event === 'mark' && client.received.filter((r) => r.msg.event === 'mark').length >= 2, 10_000);
    client.stop();
    await client.closed;
    const stored = (await rig.t.app.calls.byProviderSid(fakeCall.sid))!;
    await rig.waitForEnd(stored.id);
    const detail = await rig.t.as(rig.org.keys.viewer, { method: 'GET', url: `/v1/calls/${stored.id}` });
    expect(detail.statusCode).toBe(200);
    const body = detail.json();
    expect(body.transcript.map((x: { role: string }) => x.role)).toEqual(['assistant', 'user', 'assistant']);
    expect(body.transcript[2].latency).toMatchObject({ firstFrameOutMs: expect.any(Number), overheadMs: expect.any(Number) });
    expect(body.usage.length).toBeGreaterThan(0);

    const del = await rig.t.as(rig.org.keys.admin, { method: 'DELETE', url: `/v1/calls/${stored.id}` });
    expect(del.statusCode).toBe(204);
    expect((await rig.t.as(rig.org.keys.viewer, { method: 'GET', url: `/v1/calls/${stored.id}` })).statusCode).toBe(404);
    expect(await rig.turns(stored.id)).toEqual([]);
    const tombstone = await rig.t.app.calls.get(rig.org.id, stored.id);
    expect(tombstone.deletedAt).not.toBeNull();
    expect(tombstone.endedAt).not.toBeNull();
    expect((await rig.t.app.usage.forCall(rig.org.id, stored.id)).length).toBeGreaterThan(0);
  }, 30_000);

  it('records both sides when the agent records, says the disclosure first, and serves the WAV with ranges', async () => {
    const recorder = await rig.createAgent({ firstMessage: 'Hello.', recording: { enabled: true, disclosure: 'This call is recorded.' } });
    await rig.t.as(rig.org.keys.member, { method: 'PATCH', url: `/v1/phone-numbers/${number.id}`, payload: { agentId: recorder } });
    const { call: fakeCall, response } = await twilio.startInboundCall({ from: CALLER, to: number.phoneNumber });
    const { url, token } = streamOf(response.body);
    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    await client.waitFor((m) => m.event === 'mark', 8000);
    await client.speak(fixture('hello.ulaw').subarray(0, 8000));
    client.stop();
    await client.closed;
    await rig.t.as(rig.org.keys.member, { method: 'PATCH', url: `/v1/phone-numbers/${number.id}`, payload: { agentId } });
    const stored = (await rig.t.app.calls.byProviderSid(fakeCall.sid))!;
    const turns = await rig.turns(stored.id);
    expect(turns[0]!.text).toBe('This call is recorded. Hello.');
    await until(async () => (await rig.t.app.calls.get(rig.org.id, stored.id)).recordingKey !== null);

    const detail = (await rig.t.as(rig.org.keys.viewer, { method: 'GET', url: `/v1/calls/${stored.id}` })).json();
    expect(detail.recording).toMatchObject({ url: `/v1/calls/${stored.id}/recording`, bytes: expect.any(Number) });
    const wav = await rig.t.as(rig.org.keys.viewer, { method: 'GET', url: detail.recording.url });
    expect(wav.statusCode).toBe(200);
    expect(wav.headers['content-type']).toBe('audio/wav');
    const body = wav.rawPayload;
    expect(body.readUInt16LE(22)).toBe(2); // channels: caller, agent
    expect(body.readUInt32LE(24)).toBe(8000);
    // The agent's channel carries the greeting: some right-channel samples are loud.
    let loud = 0;
    for (let i = 44; i + 4 <= body.length; i += 4) if (Math.abs(body.readInt16LE(i + 2)) > 2000) loud++;
    expect(loud).toBeGreaterThan(100);
    const part = await rig.t.as(rig.org.keys.viewer, { method: 'GET', url: detail.recording.url, headers: { range: 'bytes=0-43' } });
    expect(part.statusCode).toBe(206);
    expect(part.rawPayload.equals(body.subarray(0, 44))).toBe(true);
    const other = await rig.t.createOrg('Eavesdropper');
    expect((await rig.t.as(other.keys.owner, { method: 'GET', url: detail.recording.url })).statusCode).toBe(404);
  }, 30_000);

  // The close code within `ms`, or 'open' if the server kept the socket.
  const closeCodeWithin = async (client: TwilioStreamClient, ms: number): Promise<number | 'open'> =>
    Promise.race([client.closed.then((c) => c.code), new Promise<'open'>((r) => setTimeout(() => r('open'), ms))]);

  it('answers a replayed voice webhook of a live call without a new stream token, and the live call carries on', async () => {
    const { call: fakeCall, response } = await twilio.startInboundCall({ from: CALLER, to: number.phoneNumber });
    const { url, token } = streamOf(response.body);
    const live = new TwilioStreamClient({ url, customParameters: { token } });
    await live.connect();
    const stored = (await rig.t.app.calls.byProviderSid(fakeCall.sid))!;
    await until(() => rig.t.app.callSessions.has(stored.id));
    const session = rig.t.app.callSessions.get(stored.id);

    // An attacker captured the signed request and posts it again, byte for byte.
    const captured = twilio.deliveries.find((d) => d.params.CallSid === fakeCall.sid && d.url.endsWith('/twilio/voice'))!;
    const replay = await twilio.postWebhook(captured.url, captured.params);
    expect(replay.status).toBe(200);
    expect(replay.body).not.toContain('<Stream');
    expect(replay.body).not.toContain('name="token"');

    await live.waitFor((m) => m.event === 'mark', 8000);
    expect(rig.t.app.callSessions.get(stored.id)).toBe(session);
    expect((await rig.t.app.calls.get(rig.org.id, stored.id)).endedAt).toBeNull();
    live.stop();
    await live.closed;
  }, 30_000);

  it('lets only one of two streams from a retried voice webhook run the call, and the refused one changes nothing', async () => {
    const { call: fakeCall, response } = await twilio.startInboundCall({ from: CALLER, to: number.phoneNumber });
    // Twilio asks again before any stream started (a retry after a timeout): both answers carry a valid token.
    const retried = await twilio.requestVoiceUrl(fakeCall.sid);
    const a = streamOf(response.body);
    const b = streamOf(retried);
    expect(b.token).not.toBe(a.token);

    const first = new TwilioStreamClient({ url: a.url, customParameters: { token: a.token }, callSid: fakeCall.sid });
    await first.connect();
    const stored = (await rig.t.app.calls.byProviderSid(fakeCall.sid))!;
    await until(() => rig.t.app.callSessions.has(stored.id));
    const session = rig.t.app.callSessions.get(stored.id);
    const { streamSid } = await rig.t.app.calls.get(rig.org.id, stored.id);

    const second = new TwilioStreamClient({ url: b.url, customParameters: { token: b.token }, callSid: fakeCall.sid });
    await second.connect();
    expect(await closeCodeWithin(second, 5000)).toBe(1008);

    await first.waitFor((m) => m.event === 'mark', 8000);
    expect(rig.t.app.callSessions.get(stored.id)).toBe(session);
    const during = await rig.t.app.calls.get(rig.org.id, stored.id);
    expect(during).toMatchObject({ endedAt: null, streamSid });
    expect(streamSid).toBe(first.streamSid);
    first.stop();
    await first.closed;
    expect((await rig.waitForEnd(stored.id)).endReason).toBe('stream_stopped');
  }, 30_000);

  it("refuses another organization's access to calls", async () => {
    const other = await rig.t.createOrg('Other');
    const call = (await callsOf())[0]!;
    for (const req of [
      { method: 'GET' as const, url: `/v1/calls/${call.id}` },
      { method: 'POST' as const, url: `/v1/calls/${call.id}/hangup` },
      { method: 'DELETE' as const, url: `/v1/calls/${call.id}` },
    ]) {
      expect((await rig.t.as(other.keys.owner, req)).statusCode).toBe(404);
    }
    const list = await rig.t.as(other.keys.owner, { method: 'GET', url: '/v1/calls' });
    expect(list.json().data).toEqual([]);
    const outbound = await rig.t.as(other.keys.owner, { method: 'POST', url: '/v1/calls', payload: { agentId, to: '+14155550123' } });
    expect(outbound.statusCode).toBe(404);
  });
});
