import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, mediaFrames, startConversationRig, type ConversationRig } from './conversation-helpers.js';
import { LINES } from '../../src/agents/conversation/lines.js';

// A long answer streamed slowly, so the caller can cut in while the model is still writing.
const LONG_REPLY = Array.from({ length: 12 }, (_, i) => `This is sentence number ${i + 1} of a long answer.`).join(' ');

describe('a conversation under barge-in and provider failures', () => {
  let rig: ConversationRig;

  beforeAll(async () => {
    rig = await startConversationRig({ deepgram: { transcripts: ['Tell me everything.', 'Stop, please.'] } });
  }, 60_000);
  afterAll(async () => rig?.close());

  it('on barge-in sends clear, stops the LLM and TTS, and keeps only the heard part of the answer', async () => {
    let requests = 0;
    rig.openai.setRespond(() => (++requests === 1 ? { text: LONG_REPLY, tokenDelayMs: 40 } : { text: 'Okay.', firstTokenDelayMs: 2500 }));
    const agentId = await rig.createAgent({});
    const { call, client } = await rig.dial(agentId);
    const abortedBefore = rig.openai.abortedStreams;

    await client.speak(fixture('hello.ulaw'));
    await client.waitFor((m) => m.event === 'media', 8000);
    // Let the caller hear a sentence or two, then talk over the agent.
    await client.waitFor((m) => m.event === 'mark', 8000);
    await client.speak(fixture('two-utterances.ulaw').subarray(0, 8000 * 2));

    expect(client.clears.length).toBeGreaterThanOrEqual(1);
    const clearedAt = client.clears[0]!;
    // Speech out stops at once: a few frames may have been in flight, then nothing until the next answer.
    const after = mediaFrames(client).filter((f) => f.at > clearedAt + 100 && f.at < clearedAt + 2000);
    expect(after.length).toBeLessThan(5);
    expect(rig.openai.abortedStreams).toBeGreaterThan(abortedBefore);

    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'assistant' && x.interrupted));
    const cut = turns.find((x) => x.role === 'assistant' && x.interrupted)!;
    expect(cut.text.length).toBeGreaterThan(0);
    expect(LONG_REPLY.startsWith(cut.text)).toBe(true);
    expect(cut.text.length).toBeLessThan(LONG_REPLY.length);
    expect(rig.events.some((e) => e.type === 'call.interrupted' && e.callId === call.id)).toBe(true);
    client.stop();
    await client.closed;
  }, 40_000);

  it('falls back to the next model when the first fails with a retryable error, and the call goes on', async () => {
    rig.openai.setRespond((req) => (req.model === 'gpt-test' ? { error: { status: 503, message: 'overloaded' } } : { text: 'The backup model answers.' }));
    const agentId = await rig.createAgent({});
    const { call, client } = await rig.dial(agentId);
    const from = rig.openai.requests.length;
    await client.speak(fixture('hello.ulaw'));
    await client.waitFor((m) => m.event === 'mark', 8000);
    expect(rig.openai.requests.slice(from).map((r) => r.model)).toEqual(['gpt-test', 'gpt-backup']);
    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'assistant' && x.endedAt !== null));
    expect(turns.find((x) => x.role === 'assistant')!.text).toBe('The backup model answers.');
    expect((await rig.t.app.calls.get(rig.org.id, call.id)).endedAt).toBeNull();
    client.stop();
    await client.closed;
  }, 30_000);

  it('apologizes and ends the call with the reason on record when every model fails', async () => {
    rig.openai.setRespond(() => ({ error: { status: 500, message: 'model crashed' } }));
    const agentId = await rig.createAgent({});
    const { call, client } = await rig.dial(agentId);
    await client.speak(fixture('hello.ulaw'));
    const ended = await rig.waitForEnd(call.id, 15_000);
    expect(ended.endReason).toBe('provider_error');
    // Named after the endpoint that failed: the self-hosted server's host here.
    expect(ended.endDetail?.startsWith(`${new URL(rig.openai.baseUrl).host}: `)).toBe(true);
    const turns = await rig.turns(call.id);
    expect(turns.at(-1)).toMatchObject({ role: 'assistant', kind: 'goodbye', text: LINES.apology });
    await client.closed;
  }, 30_000);

  it('says goodbye and ends the call at the maximum call duration', async () => {
    const agentId = await rig.createAgent({ maxDurationSeconds: 10, silenceTimeoutSeconds: 60 });
    const { call, client } = await rig.dial(agentId);
    const line = client.silence(14_000);
    const ended = await rig.waitForEnd(call.id, 15_000);
    expect(ended.endReason).toBe('max_duration');
    const turns = await rig.turns(call.id);
    expect(turns.at(-1)).toMatchObject({ role: 'assistant', kind: 'goodbye', text: LINES.maxDuration, interrupted: false });
    expect(mediaFrames(client).length).toBeGreaterThan(10);
    client.close();
    await line.catch(() => {});
  }, 30_000);

  it('ends the call politely when the speech-to-text service dies for good', async () => {
    rig.openai.setRespond(() => ({ text: 'Hello.' }));
    const agentId = await rig.createAgent({});
    const { call, client } = await rig.dial(agentId);
    await client.silence(300);
    rig.deepgram.setOptions({ rejectConnections: { count: 100, status: 503 } });
    rig.deepgram.dropConnections();
    const ended = await rig.waitForEnd(call.id, 15_000);
    rig.deepgram.setOptions({ rejectConnections: undefined });
    expect(ended.endReason).toBe('provider_error');
    expect(ended.endDetail).toMatch(/^deepgram: /);
    expect(mediaFrames(client).length).toBeGreaterThan(10);
    await client.closed;
  }, 30_000);
});
