// Turn-taking rules of the conversation engine, on the in-memory harness (fake clock, scripted providers).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConversationHarness } from '../helpers/conversation-harness.js';

// The default agent: adaptive end of turn, 250 ms after finished words, 900 ms after unfinished ones.
const MIN = 250;
const MAX = 900;

let h: ConversationHarness;

beforeEach(() => {
  ConversationHarness.useFakeClock();
});

afterEach(async () => {
  await h?.close();
  vi.useRealTimers();
});

/** The caller says `text` from `fromMs` to `toMs` (stream time = the harness clock), then falls silent. */
async function say(text: string, fromMs: number, toMs: number, options: { finalAfterMs?: number } = {}): Promise<void> {
  await h.advance(fromMs - h.now);
  h.speechStart(fromMs);
  await h.advance(toMs - fromMs);
  // VAD reports the end once the pause has lasted its shortest silence; the STT's final follows Finalize.
  await h.advance(MIN);
  h.speechEnd(toMs);
  await h.advance(options.finalAfterMs ?? 60);
  h.final(text, fromMs, toMs);
  await h.advance(0);
}

describe('the in-memory harness', () => {
  it('answers a caller turn: one LLM request with their words, then audio', async () => {
    h = new ConversationHarness();
    h.start();
    await say('What time do you open?', 100, 1500);
    await h.advance(2000);
    expect(h.llmCalls.map((c) => c.userText)).toEqual(['What time do you open?']);
    expect(h.played.length).toBeGreaterThan(0);
    expect(h.callerTurns.map((t) => t.text)).toEqual(['What time do you open?']);
  });

  it('says the first message before the caller speaks', async () => {
    h = new ConversationHarness({ agent: { firstMessage: 'Hello, how can I help?' } });
    h.start();
    await h.advance(500);
    expect(h.played[0]?.at).toBe(100);
    expect(h.llmCalls).toHaveLength(0);
  });
});

describe('adaptive end of turn', () => {
  it('answers a complete sentence after the short wait', async () => {
    h = new ConversationHarness({ llm: { reply: 'We open at nine.', firstTokenMs: 300 } });
    h.start();
    await say('What time do you open?', 100, 1500);
    // Turn confirmed when the final arrives (pause 250 + 60 ms): no longer wait for finished words.
    expect(h.callerTurns).toHaveLength(1);
    await h.advance(2000);
    const spokeAt = h.firstAudioAfter(0)!;
    // Caller's last word at 1500: 250 ms pause, 60 ms final, 300 ms to the LLM's first token and 3 x 25 ms
    // to the end of its sentence, 100 ms TTS.
    expect(spokeAt - 1500).toBe(MIN + 60 + 300 + 75 + 100);
  });

  it('waits through a long pause after "and"', async () => {
    h = new ConversationHarness();
    h.start();
    await say('I would like a table for two and', 100, 2000);
    await h.advance(MAX - MIN - 60 - 10);
    expect(h.callerTurns).toHaveLength(0);
    expect(h.played).toHaveLength(0);
  });

  it('ends the turn after "and" once the longest wait has passed', async () => {
    h = new ConversationHarness();
    h.start();
    await say('I would like a table for two and', 100, 2000);
    await h.advance(MAX - MIN - 60);
    expect(h.callerTurns.map((t) => t.text)).toEqual(['I would like a table for two and']);
  });

  it('takes the words after a pause into the same turn when the caller goes on', async () => {
    h = new ConversationHarness();
    h.start();
    await say('I would like to book a table for, um,', 100, 2000);
    await say('four people.', 2700, 3400);
    await h.advance(3000);
    expect(h.callerTurns.map((t) => t.text)).toEqual(['I would like to book a table for, um, four people.']);
    expect(h.llmCalls.at(-1)!.userText).toBe('I would like to book a table for, um, four people.');
  });

  it('with fixed turn detection, ends every turn after the endpointing silence whatever the words', async () => {
    h = new ConversationHarness({ agent: { turnDetection: { mode: 'fixed', minSilenceMs: MIN, maxSilenceMs: MAX } } });
    h.start();
    await say('I would like a table for two and', 100, 2000);
    expect(h.callerTurns).toHaveLength(1);
    expect(h.llmCalls).toHaveLength(1);
  });
});

describe('preemptive generation', () => {
  it('starts the LLM on the pause, before the turn is confirmed, and speaks nothing yet', async () => {
    h = new ConversationHarness();
    h.start();
    await say('Book me a table for two and', 100, 2000);
    expect(h.callerTurns).toHaveLength(0);
    expect(h.llmCalls.map((c) => c.userText)).toEqual(['Book me a table for two and']);
    await h.advance(400);
    expect(h.played).toHaveLength(0);
  });

  it('aborts the preemptive request and sends no audio when the caller resumes', async () => {
    h = new ConversationHarness({ llm: { reply: 'Sure, I can book that for you right away.', firstTokenMs: 100, perTokenMs: 150 } });
    h.start();
    await say('Book me a table for two and', 100, 2000);
    const preempted = h.llmCalls[0]!;
    // The LLM is writing by now; the caller goes on 500 ms into the pause.
    await h.advance(2500 - h.now);
    expect(preempted.yielded.length).toBeGreaterThan(0);
    h.speechStart(2500);
    await h.advance(0);
    expect(preempted.signal.aborted).toBe(true);
    expect(h.played).toHaveLength(0);
    expect(h.latencies.preemptions).toEqual({ used: 0, discarded: 1 });
    // The aborted request still counts the tokens it was sent.
    expect(h.usageOf('llm_input_tokens_estimated')).toBeGreaterThan(0);
  });

  it('answers from the preemptive request when the pause ends the turn', async () => {
    h = new ConversationHarness({ llm: { reply: 'Sure, for two.', firstTokenMs: 300 } });
    h.start();
    await say('Book me a table for two and', 100, 2000);
    await h.advance(2000);
    expect(h.llmCalls).toHaveLength(1);
    expect(h.latencies.preemptions).toEqual({ used: 1, discarded: 0 });
    expect(h.callerTurns[0]!.detail).toEqual({ preemption: { used: 1, discarded: 0 } });
    // The LLM ran during the wait: audio starts one TTS first byte after the turn is confirmed.
    expect(h.firstAudioAfter(0)! - 2000).toBe(MAX + 100);
  });

  it('starts a new request when the final transcript differs from the preempted words', async () => {
    h = new ConversationHarness();
    h.start();
    await say('Book me a table for', 100, 2000);
    expect(h.llmCalls.map((c) => c.userText)).toEqual(['Book me a table for']);
    // A late final adds the last word the caller said before the pause: the words now look finished.
    h.final('two.', 1900, 2000);
    await h.advance(0);
    expect(h.llmCalls[0]!.signal.aborted).toBe(true);
    expect(h.callerTurns.map((t) => t.text)).toEqual(['Book me a table for two.']);
    expect(h.llmCalls.map((c) => c.userText)).toEqual(['Book me a table for', 'Book me a table for two.']);
    await h.advance(2000);
    expect(h.llmCalls).toHaveLength(2);
    expect(h.callerTurns[0]!.detail).toEqual({ preemption: { used: 0, discarded: 1 } });
    expect(h.played.length).toBeGreaterThan(0);
  });

  it('answers from the newer request when the words change but still look unfinished', async () => {
    h = new ConversationHarness();
    h.start();
    await say('Book me a table for', 100, 2000);
    h.final('two and', 1900, 2000);
    await h.advance(2000);
    expect(h.llmCalls.map((c) => c.userText)).toEqual(['Book me a table for', 'Book me a table for two and']);
    expect(h.callerTurns[0]!.detail).toEqual({ preemption: { used: 1, discarded: 1 } });
  });

  it('never speaks while the caller is still talking after a pause', async () => {
    h = new ConversationHarness({ llm: { reply: 'Of course.', firstTokenMs: 50 } });
    h.start();
    await say('I need a taxi to the, uh,', 100, 1500);
    await say('airport, and', 2200, 2800);
    await say('quickly please.', 3500, 4200);
    const confirmedAt = h.now;
    await h.advance(2000);
    expect(h.callerTurns).toHaveLength(1);
    expect(h.firstAudioAfter(0)!).toBeGreaterThanOrEqual(confirmedAt);
    expect(h.played.every((p) => p.at > 4200)).toBe(true);
  });
});

describe('preemptive generation at an early pause (level silence, before VAD ends speech)', () => {
  /**
   * The caller's voice from `fromMs` to `toMs` (VAD hears it start), silence after it until `untilMs`; with
   * `modelHearsPauseAt`, VAD's model hears the pause from then (it lags the level by about 100 ms).
   */
  async function speak(fromMs: number, toMs: number, untilMs: number, modelHearsPauseAt?: number): Promise<void> {
    await h.audio(false, fromMs);
    await h.audio(true, fromMs + 200);
    h.speechStart(fromMs);
    await h.audio(true, toMs);
    await h.audio(false, untilMs);
    if (modelHearsPauseAt !== undefined) h.speechQuiet(modelHearsPauseAt);
  }

  it('asks the STT for its final 100 ms after the voice stops, while VAD still hears speech', async () => {
    h = new ConversationHarness();
    h.start();
    await speak(100, 1500, 1580);
    expect(h.finalizes).toBe(0);
    await h.audio(false, 1600);
    expect(h.finalizes).toBe(1);
  });

  it('starts the LLM on finished words at once, and speaks nothing before the turn is confirmed', async () => {
    h = new ConversationHarness({ llm: { reply: 'Of course, what time?', firstTokenMs: 300, perTokenMs: 25 } });
    h.start();
    await speak(100, 1500, 1600, 1590);
    h.final('Can you book a table?', 100, 1600);
    await h.audio(false, 1660);
    expect(h.llmCalls.map((c) => [c.userText, c.at])).toEqual([['Can you book a table?', 1600]]);
    expect(h.callerTurns).toHaveLength(0);
    // VAD ends speech at the policy's shortest silence; the request started 250 ms earlier is the answer.
    await h.audio(false, 1500 + MIN);
    h.speechEnd(1500);
    await h.audio(false, 3000);
    expect(h.llmCalls).toHaveLength(1);
    expect(h.latencies.preemptions).toEqual({ used: 1, discarded: 0 });
    // "Of course," is out with the second token (25 ms after the first) and goes to TTS (100 ms) at once.
    expect(h.firstAudioAfter(0)).toBe(1600 + 300 + 25 + 100);
  });

  it('waits for VAD\'s model to hear the pause too: a gap between two words is not one', async () => {
    h = new ConversationHarness();
    h.start();
    await speak(100, 1500, 1600);
    h.final('I would like a table.', 100, 1600);
    await h.audio(false, 1620);
    expect(h.llmCalls).toHaveLength(0);
    h.speechQuiet(1600);
    await h.advance(0);
    expect(h.llmCalls.map((c) => c.userText)).toEqual(['I would like a table.']);
  });

  it('leaves unfinished words to VAD\'s pause', async () => {
    h = new ConversationHarness();
    h.start();
    await speak(100, 1500, 1600, 1590);
    h.final('Book me a table for', 100, 1600);
    await h.audio(false, 1700);
    expect(h.llmCalls).toHaveLength(0);
  });

  it('aborts the early request and sends no audio when the voice comes back', async () => {
    h = new ConversationHarness({ llm: { reply: 'Sure, I can book that for you right away.', firstTokenMs: 100, perTokenMs: 150 } });
    h.start();
    await speak(100, 1500, 1600, 1590);
    h.final('I would like a table.', 100, 1600);
    await h.audio(false, 1700);
    const preempted = h.llmCalls[0]!;
    await h.audio(true, 1800);
    expect(preempted.signal.aborted).toBe(true);
    expect(h.latencies.preemptions).toEqual({ used: 0, discarded: 1 });
    await h.audio(false, 4000);
    expect(h.played).toHaveLength(0);
  });
});

describe('first words early', () => {
  it('sends the first clause to TTS while the LLM is still writing the sentence', async () => {
    const reply = 'Sure, I can book that table for you, and I will send you a confirmation by text message.';
    h = new ConversationHarness({ llm: { reply, firstTokenMs: 300, perTokenMs: 25 } });
    h.start();
    await say('Can you book a table?', 100, 1500);
    const askedAt = h.llmCalls[0]!.at;
    await h.advance(3000);
    const tokens = reply.split(' ').length;
    // "Sure, I can book" is 4 tokens (a phrase of four words, not ending on a word that leads on):
    // TTS starts on it, 100 ms before its audio.
    expect(h.firstAudioAfter(0)! - askedAt).toBe(300 + 3 * 25 + 100);
    expect(h.firstAudioAfter(0)! - askedAt).toBeLessThan(300 + (tokens - 1) * 25);
  });
});
