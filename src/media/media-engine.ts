// The seam between a call's socket (main thread) and the CPU-heavy media work (worker threads):
// the call session pushes the caller's 20 ms mu-law frames in and gets voice-activity events out, and
// asks for local (Piper) speech, which is synthesized on the same worker and comes back as mu-law.
import type { TtsOptions } from './providers.js';

/** Voice activity thresholds of one call (Silero probabilities and durations). */
export interface VadOptions {
  threshold?: number;
  minSpeechMs?: number;
  minSilenceMs?: number;
  /** Speech resuming within this long of a speech end starts after `resumeMinSpeechMs` (adaptive end of turn). */
  resumeWithinMs?: number;
  resumeMinSpeechMs?: number;
  /** Report `speech_quiet` (the model hears a pause inside speech) for engines that start work in pauses. */
  reportPauses?: boolean;
}

/**
 * What the media side reports about one call, timestamps in stream time (ms since its first frame).
 * `detectedAt` is the wall-clock instant (epoch ms, sub-ms precision, see `epochNow`) the worker decided,
 * so latency can be measured across threads.
 */
export type MediaEvent =
  | { kind: 'speech_start'; atMs: number; detectedAt?: number }
  | { kind: 'speech_end'; atMs: number; durationMs: number; detectedAt?: number }
  | { kind: 'speech_quiet'; atMs: number; quiet: boolean; detectedAt?: number }
  | { kind: 'failed'; reason: 'worker_crashed' | 'error'; detail: string };

/** One call's lane into the media engine. */
export interface MediaChannel {
  /** Hands over one frame; its buffer is transferred, so the caller must not touch it afterwards. */
  push(mulawFrame: Uint8Array): void;
  /**
   * Speaks `text` with a local Piper voice on the worker that carries the call, yielding 8 kHz mu-law chunks
   * as each sentence is ready. Aborting `options.signal` ends the iteration quietly; failures throw
   * ProviderError('piper', ...), retryable only when the worker crashed.
   */
  synthesize(text: string, options: TtsOptions): AsyncIterable<Uint8Array>;
  /** Ends the call's media work, including any synthesis still running for it (those iterations end). */
  close(): void;
}

/** Runs media work for many calls. */
export interface MediaEngine {
  open(callId: string, opts: VadOptions, onEvent: (event: MediaEvent) => void): MediaChannel;
  close(): Promise<void>;
}

/** Epoch milliseconds with sub-millisecond precision, comparable across worker threads. */
export const epochNow = (): number => performance.timeOrigin + performance.now();
