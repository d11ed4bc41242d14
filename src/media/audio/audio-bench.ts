// Micro-benchmarks of the audio primitives, shaped like the call path: 20 ms chunks, reused buffers.
// For the bench runner and for comparing machines; budgets are judged on these figures, not in tests.
//
// Scale: 100 calls x 50 frames/s x 160 samples = 800 000 samples/s each way, so 1 ns per sample costs
// 0.08 % of a core for 100 calls; a resampler at 150 ns per output sample costs 12 %.

import { performance } from 'node:perf_hooks';
import { encodeMulawSampleByFormula, mulawToPcm16, pcm16ToMulaw } from './mulaw.js';
import { Resampler } from './resampler.js';
import { sine, whiteNoise } from './signals.js';

/** Nanoseconds per sample of each primitive (lower is better). */
export interface AudioBenchResult {
  mulawDecodeNsPerSample: number;
  mulawEncodeNsPerSample: number;
  /** TTS at 24 kHz down to the 8 kHz phone line, per 8 kHz output sample. */
  resample24kTo8kNsPerOutputSample: number;
  /** Caller audio up to 16 kHz (VAD / STT models that want it), per 16 kHz output sample. */
  resample8kTo16kNsPerOutputSample: number;
}

/** How long to measure. */
export interface AudioBenchOptions {
  /** Time spent measuring each figure, split over several rounds (median kept). Default 500 ms. */
  measureMs?: number;
  /** Time spent running each workload before measuring, so the JIT has optimized it. Default 150 ms. */
  warmupMs?: number;
}

const ROUNDS = 5;

// Results are folded into this, so the JIT cannot drop the work as dead code.
let sink = 0;

/** Median ns per unit of `work`, which processes `unitsPerCall` units per call. */
function measure(work: () => number, unitsPerCall: number, opts: Required<AudioBenchOptions>): number {
  const warmEnd = performance.now() + opts.warmupMs;
  while (performance.now() < warmEnd) sink += work();
  const perRound: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let calls = 0;
    const start = performance.now();
    const end = start + opts.measureMs / ROUNDS;
    let now = start;
    // Check the clock every 16 calls only: performance.now() is not free next to a 160-sample loop.
    while (now < end) {
      for (let i = 0; i < 16; i++) sink += work();
      calls += 16;
      now = performance.now();
    }
    perRound.push(((now - start) * 1e6) / (calls * unitsPerCall));
  }
  perRound.sort((a, b) => a - b);
  return perRound[ROUNDS >> 1]!;
}

function withDefaults(opts: AudioBenchOptions): Required<AudioBenchOptions> {
  return { measureMs: opts.measureMs ?? 500, warmupMs: opts.warmupMs ?? 150 };
}

/** Times mu-law decode/encode and the two common resampling directions on 20 ms chunks. */
export function benchAudio(opts: AudioBenchOptions = {}): AudioBenchResult {
  const o = withDefaults(opts);
  const frame8k = sine({ frequency: 440, sampleRate: 8000, length: 160 });
  const mulawFrame = pcm16ToMulaw(whiteNoise(160, 1));
  const pcmOut = new Int16Array(160);
  const mulawOut = new Uint8Array(160);

  const mulawDecodeNsPerSample = measure(() => mulawToPcm16(mulawFrame, pcmOut)[17]!, 160, o);
  const mulawEncodeNsPerSample = measure(() => pcm16ToMulaw(frame8k, mulawOut)[17]!, 160, o);

  const down = new Resampler(24000, 8000);
  const frame24k = sine({ frequency: 440, sampleRate: 24000, length: 480 });
  const downOut = new Int16Array(down.maxOutputLength(480));
  const resample24kTo8kNsPerOutputSample = measure(() => down.processInto(frame24k, downOut), 160, o);

  const up = new Resampler(8000, 16000);
  const upOut = new Int16Array(up.maxOutputLength(160));
  const resample8kTo16kNsPerOutputSample = measure(() => up.processInto(frame8k, upOut), 320, o);

  return { mulawDecodeNsPerSample, mulawEncodeNsPerSample, resample24kTo8kNsPerOutputSample, resample8kTo16kNsPerOutputSample };
}

/** Times the table encoder against the segment algorithm it replaces, to back the choice in mulaw.ts. */
export function benchMulawEncoders(opts: AudioBenchOptions = {}): { tableNsPerSample: number; formulaNsPerSample: number } {
  const o = withDefaults(opts);
  const frame = whiteNoise(160, 2, 32767);
  const out = new Uint8Array(160);
  const tableNsPerSample = measure(() => pcm16ToMulaw(frame, out)[3]!, 160, o);
  const formulaNsPerSample = measure(() => {
    for (let i = 0; i < 160; i++) out[i] = encodeMulawSampleByFormula(frame[i]!);
    return out[3]!;
  }, 160, o);
  return { tableNsPerSample, formulaNsPerSample };
}

/** Keeps the benchmark's results observable; always returns a finite number. */
export const benchSink = (): number => sink;
