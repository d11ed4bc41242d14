// Piper through the real media worker pool: the test voice is loaded by the worker thread from voicesDir,
// audio crosses the thread boundary as transferred mu-law chunks, and the worker's VAD keeps working.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestPiperVoice } from '../../../../test/fakes/piper-model.js';
import { ProviderError } from '../../../shared/errors.js';
import type { MediaChannel, MediaEvent } from '../../media-engine.js';
import { MediaWorkerPool } from '../../workers/media-worker-pool.js';
import { MediaFaults } from '../../../../test/helpers/media-faults.js';

const HELLO = new Uint8Array(readFileSync(new URL('../../../../test/fixtures/audio/hello.ulaw', import.meta.url)));
const SENTENCES = (n: number) => Array.from({ length: n }, (_, i) => `This is sentence number ${i}.`).join(' ');

let dir: string;
let pool: MediaWorkerPool;
const faults = new MediaFaults();
let callNo = 0;
const logs: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'piper-worker-'));
  await writeTestPiperVoice(dir, 'test-voice');
  pool = await MediaWorkerPool.start({ size: 1, voicesDir: dir, onLog: (m) => logs.push(m), spawnWorker: faults.spawn });
});
afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

function openCall(events: MediaEvent[] = []): MediaChannel {
  return pool.open(`call-${callNo++}`, {}, (e) => events.push(e));
}

const speak = (channel: MediaChannel, text: string, signal = new AbortController().signal) =>
  channel.synthesize(text, { voice: 'test-voice', speed: 1, signal });

async function bytesOf(chunks: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of chunks) n += c.length;
  return n;
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('Piper in the media worker', () => {
  it('speaks through the channel of a call as 8 kHz mu-law', async () => {
    const channel = openCall();
    // "hello there." is 12 codepoints: 27 ids x 256 samples at 22050 Hz = 2508 samples at 8 kHz.
    expect(await bytesOf(speak(channel, 'Hello there.'))).toBe(Math.ceil((27 * 256 * 8000) / 22050));
    channel.close();
  });

  it('fails with a non-retryable piper ProviderError for a voice that is not installed', async () => {
    const channel = openCall();
    const err = await caught(bytesOf(channel.synthesize('Hi.', { voice: 'en_US-nobody-medium', speed: 1, signal: new AbortController().signal })));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ provider: 'piper', retryable: false, message: expect.stringMatching(/not installed/) });
    channel.close();
  });

  it('refuses a voice name that points outside the voices directory', async () => {
    const channel = openCall();
    const err = await caught(bytesOf(channel.synthesize('Hi.', { voice: '../test-voice', speed: 1, signal: new AbortController().signal })));
    expect(err).toMatchObject({ provider: 'piper', retryable: false, message: expect.stringMatching(/invalid Piper voice name/) });
    channel.close();
  });

  it('ends the iteration quietly when aborted mid-stream, and the next request still works', async () => {
    const channel = openCall();
    const abort = new AbortController();
    let chunks = 0;
    for await (const _chunk of speak(channel, SENTENCES(50), abort.signal)) {
      chunks++;
      abort.abort();
    }
    expect(chunks).toBe(1);
    expect(await bytesOf(speak(channel, 'Still here.'))).toBeGreaterThan(0);
    channel.close();
  });

  it('yields nothing for a request aborted before it starts', async () => {
    const channel = openCall();
    const abort = new AbortController();
    abort.abort();
    expect(await bytesOf(speak(channel, 'Never spoken.', abort.signal))).toBe(0);
    channel.close();
  });

  it('ends a call’s synthesis quietly when its channel closes', async () => {
    const channel = openCall();
    let chunks = 0;
    for await (const _chunk of speak(channel, SENTENCES(50))) {
      chunks++;
      channel.close();
    }
    expect(chunks).toBe(1);
  });

  it('keeps reporting VAD events for another call while it synthesizes', async () => {
    const events: MediaEvent[] = [];
    const listener = openCall(events);
    const speaker = openCall();
    let spoken = 0;
    const synthesis = (async () => {
      while (!events.some((e) => e.kind === 'speech_end')) spoken += await bytesOf(speak(speaker, SENTENCES(20)));
    })();
    for (let at = 0; at < HELLO.length; at += 160) listener.push(HELLO.slice(at, at + 160));
    for (let i = 0; i < 50; i++) listener.push(new Uint8Array(160).fill(0xff)); // 1 s of silence ends the utterance
    await synthesis;
    expect(events.map((e) => e.kind)).toEqual(['speech_start', 'speech_end']);
    expect(spoken).toBeGreaterThan(0);
    listener.close();
    speaker.close();
  });

  it('reports the real-time factor of synthesis in the pool stats', async () => {
    const channel = openCall();
    await bytesOf(speak(channel, SENTENCES(5)));
    const deadline = Date.now() + 3000;
    while (pool.stats().ttsRtf === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(pool.stats().ttsRtf).toBeGreaterThan(0);
    channel.close();
  });

  it('fails with a retryable ProviderError when the worker crashes mid-synthesis', async () => {
    const channel = openCall();
    const chunks = speak(channel, SENTENCES(500))[Symbol.asyncIterator]();
    await chunks.next();
    faults.crash(pool.workerOf(`call-${callNo - 1}`));
    const err = await caught((async () => {
      for (;;) if ((await chunks.next()).done) return;
    })());
    expect(err).toMatchObject({ name: 'ProviderError', provider: 'piper', retryable: true });
    channel.close();
  });
});
