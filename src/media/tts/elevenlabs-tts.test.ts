import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { expectedAudioBytes, fakeAudio, startFakeElevenLabs, type FakeElevenLabs } from '../../../test/fakes/elevenlabs.js';
import { ProviderError } from '../../shared/errors.js';
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

const opts = (extra: { speed?: number; signal?: AbortSignal; voice?: string } = {}) => ({
  voice: extra.voice ?? VOICE,
  speed: extra.speed ?? 1,
  signal: extra.signal ?? new AbortController().signal,
});

describe('ElevenLabsTts', () => {
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
