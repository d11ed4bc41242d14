import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { expectedAudioBytes, expectedAudioMs, fakeAudio, startFakeElevenLabs, type FakeElevenLabs } from '../../../test/fakes/elevenlabs.js';
import { ProviderError } from '../../shared/errors.js';
import type { TtsCharTimings } from '../providers.js';
import { ElevenLabsTts, type ElevenLabsTtsOptions } from './elevenlabs-tts.js';

const API_KEY = 'test-elevenlabs-key';
const VOICE = 'voice-rachel';
const TEXT = 'Thanks for calling, how can I help?';

let fake: FakeElevenLabs;

beforeEach(async () => {
  fake = await startFakeElevenLabs({ apiKey: API_KEY, voices: [VOICE] });
});

afterEach(async () => {
  await fake.close();
});

const tts = (options: Partial<ElevenLabsTtsOptions> = {}): ElevenLabsTts => new ElevenLabsTts({ apiKey: API_KEY, baseUrl: fake.url, ...options });

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return out;
}

const concat = (chunks: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
};

/** The error the iteration throws, or undefined when it ends normally. */
async function failureOf(chunks: AsyncIterable<Uint8Array>): Promise<unknown> {
  try {
    await collect(chunks);
    return undefined;
  } catch (err) {
    return err;
  }
}

// Set per run below: every behaviour holds for the plain stream and for the with-timestamps stream.
let onTimings: ((t: TtsCharTimings) => void) | undefined;

const opts = (extra: { speed?: number; signal?: AbortSignal; voice?: string; previousText?: string } = {}) => ({
  voice: extra.voice ?? VOICE,
  speed: extra.speed ?? 1,
  signal: extra.signal ?? new AbortController().signal,
  ...(extra.previousText ? { previousText: extra.previousText } : {}),
  onTimings,
});

describe.each([
  { stream: 'the audio stream', timed: false },
  { stream: 'the with-timestamps stream', timed: true },
])('ElevenLabsTts over $stream', ({ timed }) => {
  beforeEach(() => {
    onTimings = timed ? () => {} : undefined;
  });

  it('asks for the endpoint that matches whether timings are wanted', async () => {
    await collect(tts().synthesize(TEXT, opts()));
    expect(fake.requests[0]!.path).toBe(`/v1/text-to-speech/${VOICE}/stream${timed ? '/with-timestamps' : ''}`);
  });

  it('yields the mu-law bytes the server sent, unchanged and complete', async () => {
    const chunks = await collect(tts().synthesize(TEXT, opts()));
    const audio = concat(chunks);
    expect(audio.byteLength).toBe(expectedAudioBytes(TEXT));
    expect(audio).toEqual(fakeAudio(TEXT));
  });

  it('yields the first chunk while the server is still sending the rest', async () => {
    fake.setOptions({ chunkDelayMs: 40 });
    const started = performance.now();
    const iterator = tts().synthesize(TEXT, opts())[Symbol.asyncIterator]();
    const first = await iterator.next();
    const firstMs = performance.now() - started;
    expect(first.done).toBe(false);
    expect(fake.completedRequests).toBe(0);
    let rest = 0;
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) rest += r.value.byteLength;
    const totalMs = performance.now() - started;
    expect(first.value!.byteLength + rest).toBe(expectedAudioBytes(TEXT));
    // 21 chunks 40 ms apart: the whole answer takes ~800 ms, the first chunk a small part of that.
    expect(firstMs).toBeLessThan(totalMs / 3);
  });

  it('asks for ulaw_8000 with the model, voice, speed, latency setting and API key', async () => {
    await collect(tts({ modelId: 'eleven_turbo_v2_5', optimizeStreamingLatency: 3 }).synthesize(TEXT, opts({ speed: 1.1 })));
    expect(fake.requests).toHaveLength(1);
    const req = fake.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.voiceId).toBe(VOICE);
    expect(req.query).toMatchObject({ output_format: 'ulaw_8000', optimize_streaming_latency: '3' });
    expect(req.headers['xi-api-key']).toBe(API_KEY);
    expect(req.body).toMatchObject({ text: TEXT, model_id: 'eleven_turbo_v2_5', voice_settings: { speed: 1.1 } });
  });

  it('uses eleven_flash_v2_5 and leaves the voice settings alone at natural pace', async () => {
    await collect(tts().synthesize(TEXT, opts({ speed: 1 })));
    const req = fake.requests[0]!;
    expect(req.body).toMatchObject({ model_id: 'eleven_flash_v2_5' });
    expect(req.body).not.toHaveProperty('voice_settings');
    expect(req.query).not.toHaveProperty('optimize_streaming_latency');
  });

  it('sends what the reply said before as previous_text, so the voice carries on', async () => {
    await collect(tts().synthesize('for four people.', opts({ previousText: 'I have booked the table' })));
    await collect(tts().synthesize(TEXT, opts()));
    expect(fake.requests[0]!.body).toMatchObject({ text: 'for four people.', previous_text: 'I have booked the table' });
    expect(fake.requests[1]!.body).not.toHaveProperty('previous_text');
  });

  it('clamps speed to the 0.7-1.2 range ElevenLabs accepts instead of failing', async () => {
    const fast = await collect(tts().synthesize(TEXT, opts({ speed: 2 })));
    await collect(tts().synthesize(TEXT, opts({ speed: 0.3 })));
    expect(concat(fast).byteLength).toBe(expectedAudioBytes(TEXT));
    expect(fake.requests.map((r) => (r.body as { voice_settings: { speed: number } }).voice_settings.speed)).toEqual([1.2, 0.7]);
  });

  it('makes no request for empty text', async () => {
    expect(await collect(tts().synthesize('  ', opts()))).toEqual([]);
    expect(fake.requests).toHaveLength(0);
  });

  it('reports a wrong API key as a non-retryable 401 ProviderError', async () => {
    const err = await failureOf(tts({ apiKey: 'wrong' }).synthesize(TEXT, opts()));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ provider: 'elevenlabs', retryable: false, status: 401 });
    expect((err as Error).message).toContain('Invalid API key');
  });

  it.each([429, 500, 503])('reports HTTP %i as a retryable ProviderError with the status', async (status) => {
    fake.setOptions({ fail: { status, times: 1 } });
    const err = await failureOf(tts().synthesize(TEXT, opts()));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ retryable: true, status });
    // The SDK must not retry on its own: the engine's fallback decides.
    expect(fake.requests).toHaveLength(1);
  });

  it('reports an unknown voice as a non-retryable 404 ProviderError', async () => {
    const err = await failureOf(tts().synthesize(TEXT, opts({ voice: 'no-such-voice' })));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ retryable: false, status: 404 });
    expect((err as Error).message).toContain('voice_not_found');
  });

  it('reports a connection lost mid-stream as a retryable ProviderError', async () => {
    fake.setOptions({ dieAfterChunks: 2 });
    const err = await failureOf(tts().synthesize(TEXT, opts()));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ retryable: true, status: undefined });
  });

  it('reports an unreachable server as a retryable ProviderError', async () => {
    const url = fake.url;
    await fake.close();
    const err = await failureOf(new ElevenLabsTts({ apiKey: API_KEY, baseUrl: url }).synthesize(TEXT, opts()));
    fake = await startFakeElevenLabs();
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ retryable: true });
  });

  it('gives up with a retryable ProviderError when the audio stalls', async () => {
    fake.setOptions({ chunkDelayMs: 1000 });
    const err = await failureOf(tts({ timeoutMs: 150 }).synthesize(TEXT, opts()));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ retryable: true });
    await vi.waitFor(() => expect(fake.abortedRequests).toBe(1));
  });

  it('ends quietly when aborted mid-stream and the server sees the request cancelled', async () => {
    fake.setOptions({ chunkDelayMs: 50 });
    const abort = new AbortController();
    const received: Uint8Array[] = [];
    for await (const chunk of tts().synthesize(TEXT, opts({ signal: abort.signal }))) {
      received.push(chunk);
      if (received.length === 2) abort.abort();
    }
    expect(received).toHaveLength(2);
    await vi.waitFor(() => expect(fake.abortedRequests).toBe(1));
    expect(fake.completedRequests).toBe(0);
  });

  it('ends quietly when aborted before the server answers', async () => {
    fake.setOptions({ firstByteDelayMs: 300 });
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    expect(await collect(tts().synthesize(TEXT, opts({ signal: abort.signal })))).toEqual([]);
    await vi.waitFor(() => expect(fake.abortedRequests).toBe(1));
  });

  it('cancels the request when the consumer stops iterating early', async () => {
    fake.setOptions({ chunkDelayMs: 50 });
    for await (const _chunk of tts().synthesize(TEXT, opts())) break;
    await vi.waitFor(() => expect(fake.abortedRequests).toBe(1));
  });
});

describe('ElevenLabsTts character timings', () => {
  it('hands over every character with its timing, on one clock, before the audio it describes', async () => {
    const events: Array<{ kind: 'timings'; t: TtsCharTimings } | { kind: 'audio'; bytes: number }> = [];
    const audio: Uint8Array[] = [];
    for await (const chunk of tts().synthesize(TEXT, { ...opts(), onTimings: (t) => events.push({ kind: 'timings', t }) })) {
      events.push({ kind: 'audio', bytes: chunk.byteLength });
      audio.push(chunk);
    }
    expect(concat(audio)).toEqual(fakeAudio(TEXT));
    const timings = events.flatMap((e) => (e.kind === 'timings' ? [e.t] : []));
    expect(timings.flatMap((t) => t.chars).join('')).toBe(TEXT);
    const ends = timings.flatMap((t) => t.endsMs);
    // The fake speaks 60 ms a character: the last one ends with the audio.
    expect(ends.at(-1)).toBeCloseTo(expectedAudioMs(TEXT), 0);
    expect(ends).toEqual([...ends].sort((a, b) => a - b));
    // Each character's timing arrives no later than the audio it starts in.
    let audioMs = 0;
    for (const e of events) {
      if (e.kind === 'audio') audioMs += e.bytes / 8;
      else expect(Math.min(...e.t.startsMs)).toBeGreaterThanOrEqual(audioMs - 1);
    }
  });
});
