// Cost of Silero VAD per 32 ms window on one thread (ARCHITECTURE.md §9 budget: <= 0.2 ms mean).
// Run: `node bin/run-ts.js src/media/vad/vad-bench.ts [windows]` prints { meanMs, p99Ms } as JSON.
//
// Each sample is one `push` of a 256-sample (32 ms, 8 kHz) Int16 window through a SileroVadStream on the
// thread's shared session, exactly what a call pays per window: conversion, model run (including
// onnxruntime-node's hop to the next event-loop turn), state copy and the event state machine. The model's
// graph has no data-dependent branches at a fixed rate, so synthetic audio costs the same as speech.
import { pathToFileURL } from 'node:url';
import { loadSileroModel } from './silero-model.js';
import { SileroVadStream } from './silero-vad.js';

export interface VadBenchOptions {
  /** Timed windows. Default 5000 (160 s of audio). */
  windows?: number;
  /** Untimed windows first, so JIT, allocator and caches are warm. Default 500. */
  warmup?: number;
}

export async function benchVad(options: VadBenchOptions = {}): Promise<{ meanMs: number; p99Ms: number }> {
  const windows = options.windows ?? 5000;
  const warmup = options.warmup ?? 500;
  const stream = new SileroVadStream(await loadSileroModel(), { sampleRate: 8000 });
  const size = stream.windowSamples;
  const audio = pseudoSpeech(8000 * 10);
  const slots = Math.floor(audio.length / size);
  const window = (i: number) => audio.subarray((i % slots) * size, (i % slots) * size + size);

  for (let i = 0; i < warmup; i++) await stream.push(window(i));
  const times = new Float64Array(windows);
  for (let i = 0; i < windows; i++) {
    const chunk = window(warmup + i);
    const t0 = performance.now();
    await stream.push(chunk);
    times[i] = performance.now() - t0;
  }

  let sum = 0;
  for (const t of times) sum += t;
  times.sort();
  const p99 = times[Math.min(windows - 1, Math.ceil(0.99 * windows) - 1)]!;
  return { meanMs: sum / windows, p99Ms: p99 };
}

/** Deterministic voiced-speech-like signal: a 120 Hz harmonic series, syllable-rate envelope, some noise. */
function pseudoSpeech(samples: number, sampleRate = 8000): Int16Array {
  const out = new Int16Array(samples);
  let seed = 0x2545f491;
  for (let i = 0; i < samples; i++) {
    const t = i / sampleRate;
    let voiced = 0;
    for (let h = 1; h <= 12; h++) voiced += Math.sin(2 * Math.PI * 120 * h * t) / h;
    const envelope = Math.max(0, Math.sin(2 * Math.PI * 2.5 * t)); // ~5 syllables/s with pauses between
    seed = (Math.imul(seed, 1664525) + 1013904223) | 0;
    const noise = seed / 2 ** 31;
    out[i] = Math.round(6000 * envelope * voiced + 300 * noise);
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const windows = process.argv[2] ? Number(process.argv[2]) : undefined;
  console.log(JSON.stringify(await benchVad(windows ? { windows } : {})));
}
