import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, startConversationRig, type ConversationRig } from './conversation-helpers.js';
import { SseClient, type SseMessage } from '../helpers/sse.js';
import { TwilioStreamClient } from '../../src/simulator/twilio-stream-client.js';

// A real call (simulator -> socket -> VAD -> fake Deepgram/OpenAI -> Piper) watched through the event stream.
describe('the event stream of a live call', () => {
  let rig: ConversationRig;
  const streams: SseClient[] = [];

  beforeAll(async () => {
    rig = await startConversationRig({ deepgram: { transcripts: ['What time do you open on Monday?'] } });
  }, 60_000);
  afterAll(async () => {
    for (const s of streams) s.close();
    await rig?.close();
  });

  const open = async (key: string): Promise<SseClient> => {
    const client = await SseClient.open(`${rig.publicUrl}/v1/events/stream`, { authorization: `Bearer ${key}` });
    streams.push(client);
    expect(client.status).toBe(200);
    return client;
  };
  const isFinal = (role: string) => (m: SseMessage) => m.event === 'call.transcript' && m.json.data.final === true && m.json.data.role === role;

  it("shows an organization its own call as it happens, in order, and nothing of another organization's call", async () => {
    const other = await rig.t.createOrg('Other');
    const [mine, theirs] = [await open(rig.org.keys.viewer), await open(other.keys.viewer)];
    rig.openai.setRespond(() => ({ text: 'We open at nine in the morning.' }));

    // The other organization has a call of its own going at the same time (an echo agent: speech events).
    const echo = await rig.t.as(other.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'Echo', voice: { provider: 'echo', voiceId: 'echo' } } });
    const otherCall = (await rig.t.as(other.keys.member, { method: 'POST', url: `/v1/agents/${echo.json<{ id: string }>().id}/test-calls` })).json<{ callId: string; token: string }>();
    const otherClient = new TwilioStreamClient({ url: `${rig.publicUrl.replace('http', 'ws')}/twilio/media`, customParameters: { token: otherCall.token } });
    await otherClient.connect();

    const agentId = await rig.createAgent({});
    const { callId, client } = await rig.testCall(agentId);
    await client.connect();
    await Promise.all([client.speak(fixture('hello.ulaw')), otherClient.speak(fixture('hello.ulaw'))]);
    await client.waitFor((m) => m.event === 'mark', 8000);
    await mine.waitFor(isFinal('assistant'), 8000, 'the agent\'s answer');
    client.stop();
    otherClient.stop();
    await Promise.all([client.closed, otherClient.closed]);
    await mine.waitFor((m) => m.event === 'call.ended', 5000, 'the end');
    await theirs.waitFor((m) => m.event === 'call.ended', 5000, 'their end');

    // Everything on my stream is about my call, and it tells the call's story in order.
    expect(new Set(mine.messages.map((m) => m.json.subject))).toEqual(new Set([callId]));
    const at = (test: (m: SseMessage) => boolean) => mine.messages.findIndex(test);
    const story = [
      at((m) => m.event === 'call.created'),
      at((m) => m.event === 'call.started'),
      at((m) => m.event === 'call.speech_started'),
      at(isFinal('user')),
      at(isFinal('assistant')),
      at((m) => m.event === 'call.ended'),
    ];
    expect(story.every((i) => i >= 0), JSON.stringify(mine.types())).toBe(true);
    expect([...story].sort((x, y) => x - y)).toEqual(story);
    expect(mine.messages[story[3]!]!.json.data).toMatchObject({ role: 'user', text: 'What time do you open on Monday?' });
    expect(mine.messages[story[4]!]!.json.data).toMatchObject({ role: 'assistant', text: 'We open at nine in the morning.' });
    // Durable events carry ids that a reconnect can name; live ones do not.
    expect(mine.messages.filter((m) => m.id !== undefined).map((m) => m.event)).toEqual(['call.created', 'call.started', 'call.answered', 'call.ended', 'call.transcript.ready']);
    expect(mine.messages.find((m) => m.event === 'call.ended')!.json.data).toMatchObject({ status: 'completed', endReason: 'stream_stopped' });

    // The other organization saw its own call, and only that.
    expect(new Set(theirs.messages.map((m) => m.json.subject))).toEqual(new Set([otherCall.callId]));
    expect(theirs.types()).toEqual(expect.arrayContaining(['call.created', 'call.started', 'call.speech_started', 'call.ended']));
  }, 40_000);
});
