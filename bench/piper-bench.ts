// Piper TTS through the media worker pool: real-time factor measured inside the worker (synthesis time /
// audio duration; lower is better) and main-thread time to first audio, per sentence as the conversation
// engine asks for it.
//   node bin/run-ts.js bench/piper-bench.ts [--voices-dir DIR --voice NAME] [--rounds N]
// Without --voices-dir it uses the tiny test voice (test/fakes/piper-model.ts): that measures our own path
// (worker hop, phonemizing, ids, normalization, 22.05 -> 8 kHz resampling, mu-law, transfer), not a
// real VITS model, whose inference dominates with a real voice. Prints one JSON object.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { writeTestPiperVoice } from '../test/fakes/piper-model.js';
import { MediaWorkerPool } from '../src/media/workers/media-worker-pool.js';

/** Typical agent sentences, as the sentence chunker hands them to TTS one by one. */
export const BENCH_SENTENCES = [
  'Hello, thanks for calling Acme Dental, this is Ava.',
  'I can help you book, move or cancel an appointment.',
  'We have an opening tomorrow at ten thirty in the morning, or Thursday at two in the afternoon.',
  'Great, you are all set.',
  'Is there anything else I can help you with today?',
];

/** Options of {@link measurePiperRtf}. */
export interface PiperBenchOptions {
  /** A directory of real voices; default: a temp dir with the test voice. */
  voicesDir?: string;
  /** Voice in voicesDir. Default `test-voice`. */
  voice?: string;
  /** Times the sentence list is spoken (after one untimed warm-up sentence that loads the voice). Default 3. */
  rounds?: number;
  sentences?: string[];
}

/** What {@link measurePiperRtf} measured. */
export interface PiperBenchResult {
  /** Worker-measured synthesis time / audio duration over the timed sentences. */
  rtf: number;
  synthMs: number;
  audioMs: number;
  /** Mean main-thread time from synthesize() to its first chunk, voice already loaded. */
  firstAudioMs: number;
  /** The same for the first sentence, which also loads the voice into the worker. */
  coldFirstAudioMs: number;
  sentences: number;
}

/** Starts a 1-worker pool, speaks the sentences through a call's channel, and measures. */
export async function measurePiperRtf(opts: PiperBenchOptions = {}): Promise<PiperBenchResult> {
  const ownDir = opts.voicesDir ? undefined : await mkdtemp(join(tmpdir(), 'piper-bench-'));
  const voicesDir = opts.voicesDir ?? ownDir!;
  const voice = opts.voice ?? 'test-voice';
  if (ownDir) await writeTestPiperVoice(ownDir, voice);
  const sentences = opts.sentences ?? BENCH_SENTENCES;
  const rounds = opts.rounds ?? 3;
  const pool = await MediaWorkerPool.start({ size: 1, voicesDir });
  const channel = pool.open('piper-bench', {}, () => undefined);
  try {
    const speak = async (text: string): Promise<number> => {
      const t0 = performance.now();
      let first = -1;
      for await (const _chunk of channel.synthesize(text, { voice, speed: 1, signal: new AbortController().signal })) {
        if (first < 0) first = performance.now() - t0;
      }
      return first;
    };
    const coldFirstAudioMs = await speak(sentences[0]!);
    const before = pool.stats().ttsTotals;
    const firsts: number[] = [];
    for (let r = 0; r < rounds; r++) for (const s of sentences) firsts.push(await speak(s));
    const after = pool.stats().ttsTotals;
    const synthMs = after.synthMs - before.synthMs;
    const audioMs = after.audioMs - before.audioMs;
    return {
      rtf: synthMs / audioMs,
      synthMs,
      audioMs,
      firstAudioMs: firsts.reduce((a, b) => a + b, 0) / firsts.length,
      coldFirstAudioMs,
      sentences: firsts.length,
    };
  } finally {
    channel.close();
    await pool.close();
    if (ownDir) await rm(ownDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: { 'voices-dir': { type: 'string' }, voice: { type: 'string' }, rounds: { type: 'string' } },
    strict: true,
  });
  const rounds = values.rounds === undefined ? undefined : Number(values.rounds);
  if (rounds !== undefined && !(Number.isInteger(rounds) && rounds > 0)) throw new Error(`--rounds must be a positive integer, got "${values.rounds}"`);
  const result = await measurePiperRtf({ voicesDir: values['voices-dir'], voice: values.voice, rounds });
  console.log(JSON.stringify(result));
}
