import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode, encodeChat } from 'gpt-tokenizer/encoding/o200k_base';
import { speechSpan } from '../../src/simulator/script.js';
import { fetchServerAnswers } from '../../src/simulator/server-latency.js';
import { fixture, lastUserText, mediaFrames, startConversationRig, type ConversationRig } from './conversation-helpers.js';
import { SentenceChunker } from '../../src/agents/conversation/sentence-chunker.js';

// simulator -> real socket -> real Silero VAD in a media worker -> fake Deepgram / OpenAI through the real
// SDKs -> Piper inference on the test voice -> paced frames and marks back to the simulator.
const until = async (check: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('a conversation with an agent, end to end', () => {
  let rig: ConversationRig;

  beforeAll(async () => {
    rig = await startConversationRig({ deepgram: { transcripts: ['What time do you open on Monday?'] } });
  }, 60_000);
  afterAll(async () => rig?.close());

  it('greets the caller with the first message, variables filled, and records it once heard', async () => {
    const agentId = await rig.createAgent({ firstMessage: 'Hello, thanks for calling {{business}}.' });
    const { call, client } = await rig.dial(agentId);
    await client.waitFor((m) => m.event === 'mark', 8000);
    expect(mediaFrames(client).length).toBeGreaterThan(10);
    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.endedAt !== null));
    expect(turns[0]).toMatchObject({ role: 'assistant', kind: 'first_message', text: 'Hello, thanks for calling Vocelio Bistro.', interrupted: false });
    client.stop();
    await client.closed;
  }, 30_000);

  it('answers a spoken question with a spoken answer and records both turns with latencies', async () => {
    rig.openai.setRespond(() => ({ text: 'We open at nine in the morning.' }));
    const agentId = await rig.createAgent({});
    const { call, client } = await rig.dial(agentId);
    const before = mediaFrames(client).length;
    await client.speak(fixture('hello.ulaw'));
    await client.waitFor((m) => m.event === 'mark', 8000);
    expect(mediaFrames(client).length - before).toBeGreaterThan(10);

    const request = rig.openai.requests.at(-1)!;
    expect(request.messages[0]).toEqual({ role: 'system', content: 'You are the receptionist of Vocelio Bistro.' });
    expect(lastUserText(request.messages)).toBe('What time do you open on Monday?');

    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'assistant' && x.endedAt !== null));
    expect(turns.map((x) => [x.role, x.text])).toEqual([
      ['user', 'What time do you open on Monday?'],
      ['assistant', 'We open at nine in the morning.'],
    ]);
    expect(turns[1]!.latency).toMatchObject({
      sttFinalMs: expect.any(Number),
      llmFirstTokenMs: expect.any(Number),
      ttsFirstByteMs: expect.any(Number),
      firstFrameOutMs: expect.any(Number),
      overheadMs: expect.any(Number),
    });
    const transcript = rig.events.filter((e) => e.callId === call.id && e.type === 'call.transcript' && e.final);
    expect(transcript.map((e) => (e as { role: string; text: string }).role + ': ' + (e as { text: string }).text)).toEqual([
      'user: What time do you open on Monday?',
      'assistant: We open at nine in the morning.',
    ]);
    client.stop();
    await client.closed;
  }, 30_000);

  it('records what the caller waited, from their last voiced frame to the first answer frame, as parts that add up to it', async () => {
    rig.openai.setRespond(() => ({ text: 'We open at nine, on Mondays too.', firstTokenDelayMs: 150, tokenDelayMs: 10 }));
    const agentId = await rig.createAgent({});
    const { call, client } = await rig.dial(agentId);
    // One sentence, then silence: the caller's last voiced frame is where the level rule says its speech ends.
    const sentence = fixture('two-utterances.ulaw').subarray(0, 3600 * 8);
    const lastVoicedEndMs = speechSpan(sentence)!.endMs;
    const before = mediaFrames(client).length;
    const spokeAt = client.now();
    await client.speak(sentence);
    await client.waitFor((m) => m.event === 'mark', 8000);
    const firstFrameAt = mediaFrames(client)[before]!.at;

    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'assistant' && x.endedAt !== null));
    const l = turns.find((x) => x.role === 'assistant')!.latency!;
    const parts = l.endOfTurnMs! + l.llmFirstTokenMs! + l.firstChunkMs! + l.ttsFirstByteMs! + l.overheadMs!;
    expect(Math.abs(parts - l.callerWaitMs!)).toBeLessThanOrEqual(3);
    // The wait starts before VAD's decision (its end-of-speech silence is part of it) and includes the model's delay.
    expect(l.endOfTurnMs!).toBeGreaterThan(300);
    expect(l.llmFirstTokenMs!).toBeGreaterThanOrEqual(145);
    expect(l.callerWaitMs!).toBeGreaterThan(l.firstFrameOutMs!);
    // The caller's own clock agrees: its last voiced frame sent -> the first answer frame received.
    const callerSide = firstFrameAt - (spokeAt + lastVoicedEndMs);
    expect(Math.abs(callerSide - l.callerWaitMs!)).toBeLessThan(60);
    // And the same figure went to the node's latencies (Prometheus, the benchmark).
    expect(rig.t.app.callLatencies.callerWaitMs.values().map(Math.round)).toContain(l.callerWaitMs);
    client.stop();
    await client.closed;
  }, 30_000);

  it('with adaptive end of turn, sends the LLM request in the caller\'s pause and answers from it once the turn is confirmed', async () => {
    rig.openai.setRespond(() => ({ text: 'We open at nine, on Mondays too.', firstTokenDelayMs: 300, tokenDelayMs: 10 }));
    const agentId = await rig.createAgent({ turnDetection: { mode: 'adaptive', minSilenceMs: 250, maxSilenceMs: 900 } });
    const { call, client } = await rig.dial(agentId);
    const requestsBefore = rig.openai.requests.length;
    await client.speak(fixture('two-utterances.ulaw').subarray(0, 3600 * 8));
    await client.waitFor((m) => m.event === 'mark', 8000);

    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'assistant' && x.endedAt !== null));
    const user = turns.find((x) => x.role === 'user')!;
    const l = turns.find((x) => x.role === 'assistant')!.latency!;
    // The answer's request started before the turn was confirmed: at confirmation less of its 300 ms was
    // left. (The fake Deepgram says the whole sentence at any Finalize, so a request started in the
    // sentence's 160 ms inner pause was thrown away when the voice came back: each request is counted.)
    const requests = rig.openai.requests.length - requestsBefore;
    expect(user.detail).toEqual({ preemption: { used: 1, discarded: requests - 1 } });
    expect(l.llmFirstTokenMs!).toBeLessThan(250);
    // The early pause asked Deepgram for the final: VAD's own speech end did not have to.
    expect(l.sttFinalMs).toBe(0);
    client.stop();
    await client.closed;
  }, 30_000);

  it('gives the simulator the server\'s caller wait of each answer, read from the call\'s transcript', async () => {
    rig.openai.setRespond(() => ({ text: 'We open at nine.' }));
    const agentId = await rig.createAgent({});
    const { call, client } = await rig.dial(agentId);
    await client.speak(fixture('two-utterances.ulaw').subarray(0, 3600 * 8));
    await client.waitFor((m) => m.event === 'mark', 8000);
    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'assistant' && x.endedAt !== null));
    const answer = turns.find((x) => x.role === 'assistant')!;
    expect(await fetchServerAnswers(rig.publicUrl, rig.org.keys.member, call.id)).toEqual([{ seq: answer.seq, latency: answer.latency }]);
    client.stop();
    await client.closed;
  }, 30_000);

  it('opens the STT connection when the test call is created, before the media socket connects', async () => {
    const agentId = await rig.createAgent({});
    const before = rig.deepgram.connections.length;
    const { callId, client } = await rig.testCall(agentId);
    await until(() => rig.deepgram.connections.length === before + 1);
    rig.openai.setRespond(() => ({ text: 'Prewarmed.' }));
    await client.connect();
    await client.speak(fixture('hello.ulaw'));
    await client.waitFor((m) => m.event === 'mark', 8000);
    // The call used the connection opened early; it did not open another.
    expect(rig.deepgram.connections.length).toBe(before + 1);
    expect(rig.deepgram.connections.at(-1)!.audioBytes).toBeGreaterThan(8000 * 4);
    const turns = await rig.waitForTurns(callId, (ts) => ts.some((x) => x.role === 'assistant'));
    expect(turns[0]).toMatchObject({ role: 'user', text: 'What time do you open on Monday?' });
    client.stop();
    await client.closed;
  }, 30_000);

  it('speaks with an ElevenLabs voice: ulaw_8000 audio straight to the caller', async () => {
    rig.openai.setRespond(() => ({ text: 'This is ElevenLabs speaking.' }));
    const agentId = await rig.createAgent({ voice: { provider: 'elevenlabs', voiceId: 'voice-rachel', speed: 1 } });
    const { call, client } = await rig.dial(agentId);
    await client.speak(fixture('hello.ulaw'));
    await client.waitFor((m) => m.event === 'mark', 8000);
    const request = rig.elevenlabs.requests.at(-1)!;
    expect(request).toMatchObject({ voiceId: 'voice-rachel', query: { output_format: 'ulaw_8000' } });
    expect(request.body).toMatchObject({ text: 'This is ElevenLabs speaking.' });
    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'assistant' && x.endedAt !== null));
    expect(turns.at(-1)).toMatchObject({ role: 'assistant', text: 'This is ElevenLabs speaking.' });
    const usage = await rig.t.app.usage.forCall(rig.org.id, call.id);
    expect(usage.find((u) => u.meter === 'tts_characters')).toMatchObject({ provider: 'elevenlabs', quantity: 'This is ElevenLabs speaking.'.length });
    client.stop();
    await client.closed;
  }, 30_000);

  it('meters the call: STT seconds, LLM tokens per endpoint and model, TTS characters per provider', async () => {
    rig.openai.setRespond(() => ({ text: 'Sure.', promptTokens: 42, completionTokens: 3 }));
    const agentId = await rig.createAgent({});
    const { call, client } = await rig.dial(agentId);
    await client.speak(fixture('hello.ulaw'));
    await client.waitFor((m) => m.event === 'mark', 8000);
    client.stop();
    await client.closed;
    await rig.waitForEnd(call.id);
    const usage = await rig.t.app.usage.forCall(rig.org.id, call.id);
    const of = (meter: string) => usage.filter((u) => u.meter === meter);
    expect(of('stt_seconds')[0]!.quantity).toBeGreaterThan(4);
    // The usage names the endpoint that answered: here the self-hosted server's host, not "openai".
    const endpoint = new URL(rig.openai.baseUrl).host;
    expect(of('llm_input_tokens')).toMatchObject([{ provider: endpoint, model: 'gpt-test', quantity: 42 }]);
    expect(of('llm_output_tokens')).toMatchObject([{ provider: endpoint, model: 'gpt-test', quantity: 3 }]);
    expect(of('tts_characters')).toMatchObject([{ provider: 'piper', quantity: 'Sure.'.length }]);
  }, 30_000);

  it('runs an HTTP tool with the arguments the model gave and speaks its result', async () => {
    rig.openai.setRespond((req) => {
      const last = req.messages.at(-1) as { role: string };
      if (last.role === 'tool') return { text: 'On Monday we open at nine.' };
      return { toolCalls: [{ name: 'get_hours', arguments: { day: 'monday' } }] };
    });
    const agentId = await rig.createAgent({
      tools: [
        {
          type: 'http',
          name: 'get_hours',
          description: 'Opening hours for a day',
          url: rig.toolUrl,
          parameters: { type: 'object', properties: { day: { type: 'string' } }, required: ['day'] },
        },
      ],
    });
    const { call, client } = await rig.dial(agentId);
    await client.speak(fixture('hello.ulaw'));
    await client.waitFor((m) => m.event === 'mark', 8000);

    expect(rig.toolRequests.at(-1)).toMatchObject({ method: 'POST', body: JSON.stringify({ day: 'monday' }) });
    const followUp = rig.openai.requests.at(-1)!.messages.at(-1);
    expect(followUp).toMatchObject({ role: 'tool', content: JSON.stringify({ open: '09:00', close: '17:00' }) });
    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'assistant' && x.endedAt !== null));
    expect(turns.find((x) => x.role === 'tool')).toMatchObject({ kind: 'tool_call', detail: { name: 'get_hours', ok: true } });
    expect(turns.find((x) => x.role === 'assistant')!.text).toBe('On Monday we open at nine.');
    client.stop();
    await client.closed;
  }, 30_000);

  it('sends the tool header values that are stored encrypted and shown redacted', async () => {
    rig.openai.setRespond((req) => {
      const last = req.messages.at(-1) as { role: string };
      if (last.role === 'tool') return { text: 'Nine o clock.' };
      return { toolCalls: [{ name: 'get_hours', arguments: { day: 'tuesday' } }] };
    });
    const agentId = await rig.createAgent({
      tools: [{ type: 'http', name: 'get_hours', description: 'Opening hours', url: rig.toolUrl, headers: { Authorization: 'Bearer tool-secret-42' }, parameters: { type: 'object' } }],
    });
    const shown = await rig.t.as(rig.org.keys.viewer, { method: 'GET', url: `/v1/agents/${agentId}` });
    expect(shown.json().tools[0].headers).toEqual({ Authorization: '[redacted]' });
    const { call, client } = await rig.dial(agentId);
    await client.speak(fixture('hello.ulaw'));
    await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'tool'), 12_000);
    expect(rig.toolRequests.at(-1)).toMatchObject({ body: JSON.stringify({ day: 'tuesday' }), headers: { authorization: 'Bearer tool-secret-42' } });
    client.stop();
    await client.closed;
  }, 30_000);

  it('says a filler line while a slow tool runs', async () => {
    rig.setToolDelay(1500);
    rig.openai.setRespond((req) => {
      const last = req.messages.at(-1) as { role: string };
      if (last.role === 'tool') return { text: 'Done.' };
      return { toolCalls: [{ name: 'get_hours', arguments: { day: 'friday' } }] };
    });
    const agentId = await rig.createAgent({
      tools: [{ type: 'http', name: 'get_hours', description: 'Opening hours', url: rig.toolUrl, parameters: { type: 'object' }, fillerMessage: 'Let me check that for you.' }],
    });
    const { call, client } = await rig.dial(agentId);
    await client.speak(fixture('hello.ulaw'));
    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'assistant' && x.endedAt !== null), 12_000);
    expect(turns.find((x) => x.role === 'assistant')!.text).toBe('Let me check that for you. Done.');
    rig.setToolDelay(0);
    client.stop();
    await client.closed;
  }, 30_000);

  it('hangs up after the goodbye when the model calls end_call', async () => {
    rig.openai.setRespond(() => ({ text: 'Goodbye!', toolCalls: [{ name: 'end_call', arguments: { reason: 'caller is done' } }] }));
    const agentId = await rig.createAgent({ tools: [{ type: 'builtin', name: 'end_call' }] });
    const { call, client } = await rig.dial(agentId);
    await client.speak(fixture('hello.ulaw'));
    const ended = await rig.waitForEnd(call.id, 10_000);
    expect(ended).toMatchObject({ endReason: 'agent_hangup', endDetail: 'caller is done' });
    expect(client.received.some((r) => r.msg.event === 'mark')).toBe(true);
    await client.closed;
  }, 30_000);

  it('passes DTMF digits to the agent as one input', async () => {
    rig.openai.setRespond(() => ({ text: 'Got it.' }));
    const agentId = await rig.createAgent({});
    const { client } = await rig.dial(agentId);
    const before = rig.openai.requests.length;
    await client.silence(200);
    client.dtmf('4');
    client.dtmf('2');
    client.dtmf('#');
    await client.waitFor((m) => m.event === 'mark', 8000);
    const request = rig.openai.requests[before]!;
    expect(lastUserText(request.messages)).toContain('42');
    client.stop();
    await client.closed;
  }, 30_000);

  it('re-prompts a silent caller, then ends the call politely', async () => {
    const agentId = await rig.createAgent({ silenceTimeoutSeconds: 1 });
    const { call, client } = await rig.dial(agentId);
    const silence = client.silence(6000);
    const ended = await rig.waitForEnd(call.id, 10_000);
    expect(ended.endReason).toBe('silence_timeout');
    const turns = await rig.turns(call.id);
    expect(turns.map((x) => x.kind)).toEqual(['reprompt', 'goodbye']);
    client.close();
    await silence.catch(() => {});
  }, 30_000);
});

// ElevenLabs' fake speaks 60 ms per character, so the text the caller heard follows from the audio played.
const MS_PER_CHAR = 60;
const words = (text: string): number => text.split(/\s+/).filter(Boolean).length;
/** The part of `sentences` (spoken one chunk each, joined by spaces) that `playedMs` of audio carried. */
function heardPrefix(sentences: string[], playedMs: number, msPerChar = MS_PER_CHAR): string {
  let left = playedMs;
  const out: string[] = [];
  for (const s of sentences) {
    const ms = s.length * MS_PER_CHAR;
    if (left >= ms) {
      out.push(s);
      left -= ms;
      continue;
    }
    out.push(s.slice(0, Math.floor(left / msPerChar)));
    break;
  }
  return out.join(' ');
}
/** Roles of consecutive messages that repeat (two user messages in a row would show as ['user', 'user']). */
const repeatedRoles = (messages: unknown[]): string[][] => {
  const roles = (messages as Array<{ role: string }>).map((m) => m.role);
  return roles.slice(1).flatMap((r, i) => (r === roles[i] && r === 'user' ? [[roles[i]!, r]] : []));
};

describe('what the caller heard, and what the model used', () => {
  let rig: ConversationRig;

  beforeAll(async () => {
    rig = await startConversationRig({ deepgram: { transcripts: ['What time do you open on Monday?'] } });
  }, 60_000);
  afterAll(async () => rig?.close());

  it('stores and sends on only what the caller heard of an interrupted answer, cut inside the sentence', async () => {
    const sentences = ['Our kitchen opens at nine every weekday morning.', 'On weekends we open an hour later at ten.', 'Dinner service runs until eleven at night.'];
    const reply = sentences.join(' ');
    let n = 0;
    rig.openai.setRespond(() => (++n === 1 ? { text: reply } : { text: 'Okay.' }));
    const agentId = await rig.createAgent({ voice: { provider: 'elevenlabs', voiceId: 'voice-rachel', speed: 1 } });
    let played = 0;
    let playedAtClear: number | null = null;
    const { call, client } = await rig.dial(agentId, {
      onEvent: (e) => {
        if (e.type === 'played') played++;
        if (e.type === 'received' && e.msg.event === 'clear') playedAtClear ??= played;
      },
    });
    const requestsBefore = rig.openai.requests.length;
    await client.speak(fixture('hello.ulaw'));
    await client.waitFor((m) => m.event === 'media', 8000);
    const firstFrameAt = client.received.find((r) => r.msg.event === 'media')!.at;
    // Talk over the agent about 3.5 s into its answer: the second sentence is playing by the time VAD fires.
    await until(() => client.now() >= firstFrameAt + 3500, 10_000);
    await client.speak(fixture('two-utterances.ulaw').subarray(0, 8000 * 3));
    await until(() => playedAtClear !== null, 5000);
    await client.silence(1500);

    const heard = heardPrefix(sentences, playedAtClear! * 20);
    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'assistant' && x.interrupted));
    const cut = turns.find((x) => x.role === 'assistant' && x.interrupted)!;
    expect(reply.startsWith(cut.text)).toBe(true);
    // More than the sentence whose mark came back, less than what was sent: cut inside the second sentence.
    expect(cut.text.length).toBeGreaterThan(sentences[0]!.length + 1);
    expect(cut.text.length).toBeLessThan(sentences[0]!.length + 1 + sentences[1]!.length);
    expect(Math.abs(words(cut.text) - words(heard))).toBeLessThanOrEqual(1);

    // The caller's next turn goes to the model with the heard part as the assistant's answer before it.
    await until(() => rig.openai.requests.length >= requestsBefore + 2, 10_000);
    const next = rig.openai.requests[requestsBefore + 1]!.messages as Array<{ role: string; content: unknown }>;
    expect(next.filter((m) => m.role === 'assistant').map((m) => m.content)).toEqual([cut.text]);
    expect(repeatedRoles(next)).toEqual([]);
    client.stop();
    await client.closed;
  }, 40_000);

  it('cuts at the character timings the TTS gave, not in proportion, when it gives them', async () => {
    // The fake says the text is spoken in the first 40 % of its audio: the timings, not the length, decide.
    rig.elevenlabs.setOptions({ timingScale: 0.4 });
    // Long words, so that the first chunk (four words) lasts well past the barge-in.
    const sentence = 'Reservations accommodating larger celebrations require deposits beforehand, naturally.';
    let n = 0;
    rig.openai.setRespond(() => (++n === 1 ? { text: sentence } : { text: 'Okay.' }));
    const agentId = await rig.createAgent({ voice: { provider: 'elevenlabs', voiceId: 'voice-rachel', speed: 1 } });
    let played = 0;
    let playedAtClear: number | null = null;
    const { call, client } = await rig.dial(agentId, {
      onEvent: (e) => {
        if (e.type === 'played') played++;
        if (e.type === 'received' && e.msg.event === 'clear') playedAtClear ??= played;
      },
    });
    try {
      await client.speak(fixture('hello.ulaw'));
      await client.waitFor((m) => m.event === 'media', 8000);
      const firstFrameAt = client.received.find((r) => r.msg.event === 'media')!.at;
      // Inside the first chunk (its first four words), where timings and proportion differ most.
      await until(() => client.now() >= firstFrameAt + 600, 10_000);
      await client.speak(fixture('two-utterances.ulaw').subarray(0, 8000 * 2));
      await until(() => playedAtClear !== null, 5000);
      // The engine speaks the sentence in the chunks its chunker makes (its first words go ahead on their own).
      const chunker = new SentenceChunker();
      const chunks = [...chunker.push(sentence), ...chunker.flush()];
      const byTimings = heardPrefix(chunks, playedAtClear! * 20, MS_PER_CHAR * 0.4);
      const byLength = heardPrefix(chunks, playedAtClear! * 20);
      expect(words(byTimings) - words(byLength)).toBeGreaterThanOrEqual(2);
      const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'assistant' && x.interrupted));
      const cut = turns.find((x) => x.role === 'assistant' && x.interrupted)!;
      expect(sentence.startsWith(cut.text)).toBe(true);
      expect(Math.abs(words(cut.text) - words(byTimings))).toBeLessThanOrEqual(1);
      expect(Math.abs(words(cut.text) - words(byTimings))).toBeLessThan(Math.abs(words(cut.text) - words(byLength)));
    } finally {
      rig.elevenlabs.setOptions({ timingScale: 1 });
      client.stop();
      await client.closed;
    }
  }, 40_000);

  it('never sends two caller messages in a row when the caller cut in before the agent said anything', async () => {
    let n = 0;
    rig.openai.setRespond(() => (++n === 1 ? { text: 'Let me think about that for a while.', firstTokenDelayMs: 4000 } : { text: 'Sure.' }));
    const agentId = await rig.createAgent({});
    const { client } = await rig.dial(agentId);
    const requestsBefore = rig.openai.requests.length;
    await client.speak(fixture('hello.ulaw'));
    await until(() => rig.openai.requests.length > requestsBefore, 8000);
    // The model is still thinking: nothing has been said when the caller speaks again.
    await client.speak(fixture('two-utterances.ulaw').subarray(0, 8000 * 3));
    await client.silence(1500);
    await until(() => rig.openai.requests.length >= requestsBefore + 2, 10_000);
    const next = rig.openai.requests[requestsBefore + 1]!.messages as Array<{ role: string; content: unknown }>;
    expect(repeatedRoles(next)).toEqual([]);
    // Both things the caller said reach the model, in one message.
    expect(lastUserText(next)).toBe('What time do you open on Monday?\nWhat time do you open on Monday?');
    client.stop();
    await client.closed;
  }, 40_000);

  it('records the estimated input tokens and the streamed output tokens of an LLM stream cut by barge-in', async () => {
    const long = Array.from({ length: 10 }, (_, i) => `Here is detail number ${i + 1} of the answer.`).join(' ');
    let n = 0;
    rig.openai.setRespond(() => (++n === 1 ? { text: long, tokenDelayMs: 120 } : { text: 'Okay.' }));
    const agentId = await rig.createAgent({});
    const { call, client } = await rig.dial(agentId);
    const requestsBefore = rig.openai.requests.length;
    await client.speak(fixture('hello.ulaw'));
    await client.waitFor((m) => m.event === 'media', 8000);
    await client.speak(fixture('two-utterances.ulaw').subarray(0, 8000 * 2));
    await until(() => client.clears.length > 0, 5000);
    client.stop();
    await client.closed;
    await rig.waitForEnd(call.id);

    const aborted = rig.openai.requests[requestsBefore]!;
    const usage = await rig.t.app.usage.forCall(rig.org.id, call.id);
    const input = usage.find((u) => u.meter === 'llm_input_tokens_estimated' && u.model === 'gpt-test');
    const output = usage.find((u) => u.meter === 'llm_output_tokens_estimated' && u.model === 'gpt-test');
    const promptTokens = encodeChat(aborted.messages as Array<{ role: 'system' | 'user' | 'assistant'; content: string }>, 'gpt-4o').length;
    expect(input?.quantity).toBeGreaterThan(promptTokens * 0.9);
    expect(input!.quantity).toBeLessThan(promptTokens * 1.1);
    // Some of the answer streamed before the caller cut in, never all of it.
    expect(output?.quantity).toBeGreaterThan(0);
    expect(output!.quantity).toBeLessThan(encode(long).length);
    expect(input!.provider).toBe(new URL(rig.openai.baseUrl).host);
  }, 40_000);

  it('tells what the agent is doing: thinking until its first audio, speaking while it plays, listening after', async () => {
    rig.openai.setRespond(() => ({ text: 'We open at nine.' }));
    const agentId = await rig.createAgent({ firstMessage: 'Hello there.' });
    const { call, client } = await rig.dial(agentId);
    await client.waitFor((m) => m.event === 'mark', 8000);
    await until(() => rig.events.some((e) => e.callId === call.id && e.type === 'call.agent_state' && e.state === 'listening'), 5000);
    const marks = () => client.received.filter((r) => r.msg.event === 'mark').length;
    await client.speak(fixture('hello.ulaw'));
    await until(() => marks() >= 2, 8000);
    await rig.waitForTurns(call.id, (ts) => ts.filter((x) => x.role === 'assistant' && x.endedAt !== null).length === 2);
    const states = rig.events.filter((e) => e.callId === call.id && e.type === 'call.agent_state').map((e) => (e as { state: string }).state);
    expect(states).toEqual(['thinking', 'speaking', 'listening', 'thinking', 'speaking', 'listening']);
    client.stop();
    await client.closed;
  }, 30_000);
});
