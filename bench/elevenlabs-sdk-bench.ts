// Does the ElevenLabs SDK add latency to streaming TTS? Time to the first audio byte through ElevenLabsTts
// (the official SDK) against a bare `fetch` of the same endpoint, both against the local fake, alternating.
// The endpoint is the with-timestamps stream, which calls use (their character timings place barge-in cuts).
//   node bin/run-ts.js bench/elevenlabs-sdk-bench.ts [--requests N] (default 50 through each path)
// Progress goes to stderr; stdout carries exactly one JSON object.
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ElevenLabsTts } from '../src/media/tts/elevenlabs-tts.js';
import { startFakeElevenLabs } from '../test/fakes/elevenlabs.js';
import { percentiles, round2 } from './stats.js';

const API_KEY = 'bench-elevenlabs-key';
const VOICE = 'bench-voice';
const MODEL = 'eleven_flash_v2_5';
/** A typical first clause of a reply: ~2 s of audio, 20 chunks. */
const TEXT = 'Sure, I can help you with that.';
/** Unmeasured requests per path first, so neither pays for JIT warm-up or the first TCP connection. */
const WARMUP = 5;

/** Time to first audio byte, ms. */
export interface FirstByteMs {
  p50: number;
  p95: number;
}

/** What {@link measureElevenLabsSdkOverhead} found. */
export interface ElevenLabsSdkOverhead {
  sdkFirstByteMs: FirstByteMs;
  fetchFirstByteMs: FirstByteMs;
  /** SDK p50 minus fetch p50: what the SDK costs before the caller hears anything. */
  overheadMs: number;
}

/** Reads the rest of a response so its connection goes back to the pool for the next request. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  while (!(await reader.read()).done);
}

async function sdkFirstByte(tts: ElevenLabsTts): Promise<number> {
  const started = performance.now();
  const chunks = tts.synthesize(TEXT, { voice: VOICE, speed: 1, signal: new AbortController().signal, onTimings: () => {} })[Symbol.asyncIterator]();
  const first = await chunks.next();
  const ms = performance.now() - started;
  if (first.done) throw new Error('SDK request returned no audio');
  while (!(await chunks.next()).done);
  return ms;
}

async function fetchFirstByte(baseUrl: string): Promise<number> {
  const started = performance.now();
  // The same request the SDK makes: path, query, header and snake_case body.
  const res = await fetch(`${baseUrl}/v1/text-to-speech/${VOICE}/stream/with-timestamps?output_format=ulaw_8000`, {
    method: 'POST',
    headers: { 'xi-api-key': API_KEY, 'content-type': 'application/json', accept: '*/*' },
    body: JSON.stringify({ text: TEXT, model_id: MODEL }),
  });
  if (!res.ok || !res.body) throw new Error(`fetch request failed: HTTP ${res.status}`);
  const reader = res.body.getReader();
  // The first audio is in the first complete JSON line.
  const decoder = new TextDecoder();
  let text = '';
  let first = await reader.read();
  for (; !first.done; first = await reader.read()) {
    text += decoder.decode(first.value, { stream: true });
    const line = text.indexOf('\n');
    if (line !== -1 && (JSON.parse(text.slice(0, line)) as { audio_base64: string }).audio_base64) break;
  }
  const ms = performance.now() - started;
  if (first.done) throw new Error('fetch request returned no audio');
  await drain(reader);
  return ms;
}

/** Time to first audio byte through the SDK and through plain fetch, `requests` of each, against the local fake. */
export async function measureElevenLabsSdkOverhead(opts: { requests?: number } = {}): Promise<ElevenLabsSdkOverhead> {
  const requests = opts.requests ?? 50;
  const fake = await startFakeElevenLabs({ apiKey: API_KEY, firstByteDelayMs: 0, chunkDelayMs: 0 });
  try {
    const tts = new ElevenLabsTts({ apiKey: API_KEY, baseUrl: fake.url, modelId: MODEL });
    for (let i = 0; i < WARMUP; i++) {
      await sdkFirstByte(tts);
      await fetchFirstByte(fake.url);
    }
    const sdk: number[] = [];
    const plain: number[] = [];
    for (let i = 0; i < requests; i++) {
      // Swap the order each round so neither path always runs on the connection the other just warmed.
      if (i % 2 === 0) {
        sdk.push(await sdkFirstByte(tts));
        plain.push(await fetchFirstByte(fake.url));
      } else {
        plain.push(await fetchFirstByte(fake.url));
        sdk.push(await sdkFirstByte(tts));
      }
    }
    const s = percentiles(sdk);
    const f = percentiles(plain);
    return { sdkFirstByteMs: { p50: s.p50, p95: s.p95 }, fetchFirstByteMs: { p50: f.p50, p95: f.p95 }, overheadMs: round2(s.p50 - f.p50) };
  } finally {
    await fake.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { requests: { type: 'string' } }, strict: true });
  const requests = values.requests === undefined ? undefined : Number(values.requests);
  if (requests !== undefined && (!Number.isInteger(requests) || requests <= 0)) throw new Error(`--requests must be a positive integer, got "${values.requests}"`);
  process.stderr.write(`ElevenLabs SDK vs fetch, time to first audio byte: ${requests ?? 50} requests each against the local fake...\n`);
  const result = await measureElevenLabsSdkOverhead({ requests });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// Run directly (bin/run-ts.js puts the entry's absolute path in argv[1]); importing only exports the function.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
