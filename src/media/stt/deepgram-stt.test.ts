import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeDeepgram, type FakeDeepgram, type FakeDeepgramOptions } from '../../../test/fakes/deepgram.js';
import { ProviderError } from '../../shared/errors.js';
import type { SttEvent, SttStream } from '../providers.js';
import { DeepgramStt, type DeepgramSttOptions } from './deepgram-stt.js';

const fixture = (name: string): Uint8Array => readFileSync(new URL(`../../../test/fixtures/audio/${name}`, import.meta.url));
const silence = (seconds: number): Uint8Array => new Uint8Array(seconds * 8000).fill(0xff);
const FIRST = 'I would like to book a table for two.';
const SECOND = 'Tomorrow evening at seven, please.';
/** two-utterances.ulaw: speech at 0.5-2.488 s and 3.688-5.787 s. */
const TWO = fixture('two-utterances.ulaw');

describe('DeepgramStt against a fake Deepgram', () => {
  let fake: FakeDeepgram | undefined;
  const streams: SttStream[] = [];

  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await fake?.close();
    fake = undefined;
  });

  async function setup(fakeOptions: FakeDeepgramOptions = {}, sttOptions: Partial<DeepgramSttOptions> = {}) {
    fake = await startFakeDeepgram({ transcripts: [FIRST, SECOND], ...fakeOptions });
    const stt = new DeepgramStt({ apiKey: 'test-deepgram-key', baseUrl: fake.url, ...sttOptions });
    const controller = new AbortController();
    const stream = stt.stream({ language: 'en-US', model: 'nova-3', endpointingMs: 300, signal: controller.signal });
    streams.push(stream);
    return { fake, stream, controller };
  }

  /** Pushes 20 ms frames, faster than real time. */
  const push = (stream: SttStream, audio: Uint8Array) => {
    for (let i = 0; i < audio.length; i += 160) stream.push(audio.subarray(i, i + 160));
  };

  /** Collects events into `into` until the iteration ends; rejects with the iteration's error. */
  async function drain(stream: SttStream, into: SttEvent[] = []): Promise<SttEvent[]> {
    for await (const event of stream) into.push(event);
    return into;
  }

  const until = async (check: () => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  const finals = (events: SttEvent[]) => events.filter((e): e is Extract<SttEvent, { kind: 'final' }> => e.kind === 'final');

  /** The whole two-utterances fixture, then enough silence for the last UtteranceEnd, then CloseStream. */
  async function transcribeTwo() {
    const { stream } = await setup();
    await stream.ready;
    push(stream, TWO);
    push(stream, silence(1.2));
    stream.endInput();
    return drain(stream);
  }

  it('yields the two scripted utterances as speech-final finals, in order', async () => {
    const events = await transcribeTwo();
    expect(finals(events).filter((e) => e.speechFinal).map((e) => e.text)).toEqual([FIRST, SECOND]);
  });

  it('follows each speech-final final with an utterance_end', async () => {
    const events = await transcribeTwo();
    const kinds = events.filter((e) => e.kind === 'utterance_end' || (e.kind === 'final' && e.speechFinal)).map((e) => e.kind);
    expect(kinds).toEqual(['final', 'utterance_end', 'final', 'utterance_end']);
  });

  it('reports interim results before the final of each utterance', async () => {
    const events = await transcribeTwo();
    const firstFinal = events.findIndex((e) => e.kind === 'final');
    const interims = events.slice(0, firstFinal).filter((e) => e.kind === 'interim');
    expect(interims.length).toBeGreaterThan(0);
    expect(interims.every((e) => e.kind === 'interim' && FIRST.startsWith(e.text))).toBe(true);
  });

  it('reports times in seconds of audio that never go backwards', async () => {
    const events = await transcribeTwo();
    const starts = events.filter((e) => e.kind === 'speech_started').map((e) => (e.kind === 'speech_started' ? e.at : NaN));
    expect(starts[0]).toBeCloseTo(0.5, 1);
    expect(starts[1]).toBeCloseTo(3.69, 1);
    const [first, second] = finals(events).filter((e) => e.speechFinal);
    expect(first!.end).toBeGreaterThan(2.49);
    expect(first!.end).toBeLessThanOrEqual(second!.start);
    expect(second!.end).toBeLessThanOrEqual((TWO.length + 1.2 * 8000) / 8000);
    const utteranceEnds = events.filter((e) => e.kind === 'utterance_end').map((e) => (e.kind === 'utterance_end' ? e.lastWordEnd : NaN));
    expect(utteranceEnds[0]).toBeCloseTo(2.49, 1);
    expect(utteranceEnds[1]).toBeCloseTo(5.79, 1);
  });

  it('asks Deepgram for 8 kHz mu-law with interim results, endpointing and VAD events', async () => {
    const { fake, stream } = await setup({}, { utteranceEndMs: 1200 });
    await stream.ready;
    expect(fake.connections[0]!.query).toMatchObject({
      model: 'nova-3', language: 'en-US', encoding: 'mulaw', sample_rate: '8000', channels: '1', interim_results: 'true',
      endpointing: '300', utterance_end_ms: '1200', vad_events: 'true', smart_format: 'true', punctuate: 'true',
    });
    expect(fake.connections[0]!.auth).toBe('header');
  });

  it('opens the socket before any audio is pushed', async () => {
    const { fake, stream } = await setup();
    await stream.ready;
    expect(fake.connections).toHaveLength(1);
    expect(fake.audioBytes).toBe(0);
  });

  it('keeps audio pushed before the socket opened and counts it as sent', async () => {
    const { fake, stream } = await setup();
    push(stream, TWO);
    expect(stream.audioSeconds).toBe(0);
    stream.endInput();
    const events = await drain(stream);
    expect(fake.audioBytes).toBe(TWO.length);
    expect(stream.audioSeconds).toBe(TWO.length / 8000);
    expect(finals(events).map((e) => e.text)).toContain(FIRST);
  });

  it('sends audio in 100 ms messages, and the rest of a message before Finalize', async () => {
    const { fake, stream } = await setup();
    await stream.ready;
    push(stream, silence(0.12));
    await until(() => fake.audioBytes > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.audioBytes).toBe(800);
    stream.flush();
    await until(() => fake.finalizes === 1);
    expect(fake.audioBytes).toBe(960);
    expect(stream.audioSeconds).toBe(0.12);
  });

  it('sends KeepAlive while no audio flows, so Deepgram does not close the idle socket', async () => {
    const { fake, stream } = await setup({ idleTimeoutMs: 200 }, { keepAliveMs: 50 });
    await stream.ready;
    await new Promise((r) => setTimeout(r, 500));
    expect(fake.keepAlives).toBeGreaterThanOrEqual(5);
    expect(fake.connections).toHaveLength(1);
    expect(fake.connections[0]!.closed).toBe(false);
  });

  /** A stream 1.5 s into "Hello, thanks for calling.", its first interim in; events collected as they come. */
  async function midSentence() {
    const { fake, stream } = await setup({ transcripts: ['Hello, thanks for calling.'] });
    const events: SttEvent[] = [];
    const done = drain(stream, events);
    push(stream, fixture('hello.ulaw').subarray(0, 1.5 * 8000));
    await until(() => events.some((e) => e.kind === 'interim'));
    return { fake, stream, events, done };
  }

  it('sends Finalize on flush and yields a final for the speech so far', async () => {
    const { fake, stream, events, done } = await midSentence();
    stream.flush();
    await until(() => events.some((e) => e.kind === 'final'));
    expect(fake.finalizes).toBe(1);
    expect(finals(events)[0]).toMatchObject({ text: 'Hello, thanks for calling.', speechFinal: false });
    stream.close();
    await done;
  });

  it('reports the endpoint after a flush as an empty speech-final final', async () => {
    const { stream, events, done } = await midSentence();
    stream.flush();
    push(stream, silence(0.5));
    stream.endInput();
    await done;
    expect(finals(events).map(({ text, speechFinal }) => ({ text, speechFinal }))).toEqual([
      { text: 'Hello, thanks for calling.', speechFinal: false },
      { text: '', speechFinal: true },
    ]);
  });

  it('reports the empty final that answers a second flush: nothing more was said up to its end', async () => {
    const { stream, events, done } = await midSentence();
    stream.flush();
    await until(() => finals(events).length === 1);
    push(stream, silence(0.1));
    stream.flush();
    await until(() => finals(events).length === 2);
    expect(finals(events)[1]).toMatchObject({ text: '', speechFinal: false, end: 1.6 });
    stream.close();
    await done;
  });

  it('keeps events that arrive before anyone iterates', async () => {
    const { fake, stream } = await setup();
    push(stream, TWO);
    stream.endInput();
    await until(() => fake.connections[0]?.closed === true);
    const events = await drain(stream);
    expect(finals(events).filter((e) => e.speechFinal).map((e) => e.text)).toEqual([FIRST, SECOND]);
  });

  it('reconnects after a dropped connection and keeps later utterances on the same timeline', async () => {
    const { fake, stream } = await setup();
    const events: SttEvent[] = [];
    const done = drain(stream, events);
    push(stream, TWO.subarray(0, 3 * 8000));
    await until(() => finals(events).some((e) => e.speechFinal));
    // The first retry is refused too, so the audio below is pushed while the stream is between connections.
    fake.setOptions({ rejectConnections: { count: 1, status: 503 } });
    fake.dropConnections();
    await until(() => fake.rejected === 1);
    push(stream, TWO.subarray(3 * 8000));
    push(stream, silence(1.2));
    stream.endInput();
    await done;

    expect(fake.connections).toHaveLength(2);
    expect(fake.audioBytes).toBe(TWO.length + 1.2 * 8000);
    const spoken = finals(events).filter((e) => e.speechFinal);
    expect(spoken.map((e) => e.text)).toEqual([FIRST, SECOND]);
    expect(spoken[1]!.start).toBeGreaterThanOrEqual(spoken[0]!.end);
    const starts = events.filter((e) => e.kind === 'speech_started').map((e) => (e.kind === 'speech_started' ? e.at : NaN));
    expect(starts[1]).toBeCloseTo(3.69, 1);
  });

  it('throws a non-retryable ProviderError when Deepgram refuses the key with 401', async () => {
    const { fake, stream } = await setup({ apiKey: 'another-key' });
    const error = await drain(stream).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ provider: 'deepgram', retryable: false, status: 401 });
    expect(fake.rejected).toBe(1);
    await expect(stream.ready).rejects.toBeInstanceOf(ProviderError);
  });

  it('throws a retryable ProviderError once its reconnects are exhausted', async () => {
    const { fake, stream } = await setup({ rejectConnections: { count: 10, status: 500 } }, { maxReconnects: 2 });
    const error = await drain(stream).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ provider: 'deepgram', retryable: true, status: 500 });
    expect(fake.rejected).toBe(3);
  });

  it('ends the iteration and closes the socket when its signal is aborted', async () => {
    const { fake, stream, controller } = await setup();
    const done = drain(stream);
    await stream.ready;
    push(stream, TWO.subarray(0, 8000));
    controller.abort();
    await done;
    await until(() => fake.connections[0]!.closed);
    expect(fake.connections[0]!.closeCode).toBe(1000);
  });

  it.each(['noise.ulaw', 'silence.ulaw'])('yields no transcript for %s', async (name) => {
    const { fake, stream } = await setup();
    push(stream, fixture(name));
    stream.endInput();
    const events = await drain(stream);
    expect(fake.audioBytes).toBe(16000);
    expect(events.filter((e) => e.kind !== 'utterance_end')).toEqual([]);
  });
});
