// Per-call voice activity detection with Silero VAD: PCM in, speech start/end events out, in stream time.
//
// We feed Silero at 8 kHz, the rate Twilio delivers: the model supports it natively (256-sample = 32 ms
// windows), so there is no resampling on the hot path and each window costs half the compute of 16 kHz.
// 16 kHz (512-sample windows) is supported for wideband sources.
import { Tensor } from 'onnxruntime-node';
import { loadSileroModel, type SileroModel } from './silero-model.js';

export type VadEvent =
  /** Speech began at `atMs` (already padded by `speechPadMs`); emitted once it has lasted `minSpeechMs`. */
  | { readonly kind: 'speech_start'; readonly atMs: number }
  /** Speech ended at `atMs` (padded); emitted once silence has lasted `minSilenceMs`. */
  | { readonly kind: 'speech_end'; readonly atMs: number; readonly durationMs: number }
  /**
   * Inside speech, the probability fell under `negThreshold` at `atMs` (`quiet: true`) or came back to
   * `threshold` before speech ended (`quiet: false`): the model's view of a pause, before `minSilenceMs`
   * decides whether speech ended. Only with `reportPauses`.
   */
  | { readonly kind: 'speech_quiet'; readonly atMs: number; readonly quiet: boolean };

export type VadSampleRate = 8000 | 16000;

export interface SileroVadOptions {
  /** Rate of the PCM passed to `push`. Default 8000. */
  sampleRate?: VadSampleRate;
  /** A window is speech when its probability is >= this. Default 0.5. */
  threshold?: number;
  /** Speech continues until the probability drops below this (hysteresis). Default `threshold - 0.15`. */
  negThreshold?: number;
  /** Shorter bursts (coughs, clicks, "uh") never start speech. Default 200 ms. */
  minSpeechMs?: number;
  /** Silence that ends speech; shorter pauses are part of the utterance. Default 400 ms. */
  minSilenceMs?: number;
  /** Widens each reported segment on both sides, since the model reacts a little late. Default 30 ms. */
  speechPadMs?: number;
  /**
   * Speech that comes back within this long of a `speech_end` is the same caller going on after a pause:
   * it starts after `resumeMinSpeechMs`, not `minSpeechMs`, so an engine that ends turns on short pauses
   * learns at once that the caller continued. Default 0 (off).
   */
  resumeWithinMs?: number;
  /** Speech needed to start again within `resumeWithinMs` of a speech end. Default 64 ms (two 8 kHz windows). */
  resumeMinSpeechMs?: number;
  /** Report `speech_quiet` events (an engine that starts work in the caller's pauses wants them). Default false. */
  reportPauses?: boolean;
  /** Called with every window's speech probability and the stream time at the end of that window. */
  onWindow?: (probability: number, endMs: number) => void;
}

export const VAD_DEFAULTS = {
  sampleRate: 8000,
  threshold: 0.5,
  minSpeechMs: 200,
  minSilenceMs: 400,
  speechPadMs: 30,
} as const satisfies SileroVadOptions;

/** Window and context sizes Silero v5/v6 were trained with; other sizes give wrong probabilities. */
const GEOMETRY = {
  8000: { window: 256, context: 32 },
  16000: { window: 512, context: 64 },
} as const satisfies Record<VadSampleRate, { window: number; context: number }>;

const STATE_SIZE = 2 * 1 * 128;
const NO_EVENTS: readonly VadEvent[] = Object.freeze([]);
const NOTHING_TO_DO: Promise<readonly VadEvent[]> = Promise.resolve(NO_EVENTS);

/**
 * One call's VAD. Holds the model's recurrent state, the audio not yet forming a full window, and the
 * speech/silence state machine; the ONNX session itself is shared by all streams on the thread.
 *
 * `push` may be called again before its previous promise settles: windows are always run one at a time
 * in arrival order, and each event is delivered exactly once, by the first pending `push` to finish the
 * window that produced it.
 */
export class SileroVadStream {
  readonly sampleRate: VadSampleRate;
  readonly windowSamples: number;
  readonly windowMs: number;

  private readonly session: SileroModel['session'];
  private readonly threshold: number;
  private readonly negThreshold: number;
  private readonly minSpeechSamples: number;
  private readonly minSilenceSamples: number;
  private readonly padSamples: number;
  private readonly resumeWithinSamples: number;
  private readonly resumeMinSpeechSamples: number;
  private readonly reportPauses: boolean;
  private readonly onWindow: SileroVadOptions['onWindow'];
  private readonly context: number;

  // Model input: [previous window's last `context` samples | current window]; reused for every window.
  private readonly input: Float32Array;
  private readonly state = new Float32Array(STATE_SIZE);
  private readonly feeds: Record<'input' | 'state' | 'sr', Tensor>;

  // Samples pushed but not yet run, as [pendingStart, pendingEnd) of a growable buffer.
  private pending: Float32Array;
  private pendingStart = 0;
  private pendingEnd = 0;

  private tail: Promise<unknown> = NOTHING_TO_DO;
  /** Bumped by reset(), so a window already inside the model cannot leak into the new stream. */
  private generation = 0;
  private freshState = true;

  private processedSamples = 0;
  private lastProbability = 0;
  private inSpeech = false;
  private candidateStart = -1; // where a not-yet-confirmed burst began, or -1
  private silenceStart = -1; // where the current pause inside speech began, or -1
  private speechStart = 0;
  private lastSpeechEnd = 0;
  // Whether any speech has ended yet (lastSpeechEnd = 0 is also a stream's start).
  private ended = false;

  /** A stream on this thread's shared model. */
  static async create(options: SileroVadOptions = {}): Promise<SileroVadStream> {
    return new SileroVadStream(await loadSileroModel(), options);
  }

  constructor(model: SileroModel, options: SileroVadOptions = {}) {
    const sampleRate = options.sampleRate ?? VAD_DEFAULTS.sampleRate;
    if (sampleRate !== 8000 && sampleRate !== 16000) {
      throw new RangeError(`Silero VAD runs at 8000 or 16000 Hz, not ${String(sampleRate)}`);
    }
    const threshold = options.threshold ?? VAD_DEFAULTS.threshold;
    const negThreshold = options.negThreshold ?? Math.max(threshold - 0.15, 0.01);
    if (!(threshold > 0 && threshold < 1)) throw new RangeError(`threshold must be in (0, 1), got ${threshold}`);
    if (!(negThreshold > 0 && negThreshold <= threshold)) {
      throw new RangeError(`negThreshold must be in (0, threshold], got ${negThreshold}`);
    }
    const ms = (name: string, value: number) => {
      if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`${name} must be >= 0 ms, got ${value}`);
      return Math.round((value * sampleRate) / 1000);
    };

    this.session = model.session;
    this.sampleRate = sampleRate;
    this.threshold = threshold;
    this.negThreshold = negThreshold;
    this.minSpeechSamples = ms('minSpeechMs', options.minSpeechMs ?? VAD_DEFAULTS.minSpeechMs);
    this.minSilenceSamples = ms('minSilenceMs', options.minSilenceMs ?? VAD_DEFAULTS.minSilenceMs);
    this.padSamples = ms('speechPadMs', options.speechPadMs ?? VAD_DEFAULTS.speechPadMs);
    this.resumeWithinSamples = ms('resumeWithinMs', options.resumeWithinMs ?? 0);
    this.resumeMinSpeechSamples = ms('resumeMinSpeechMs', options.resumeMinSpeechMs ?? 64);
    this.reportPauses = options.reportPauses ?? false;
    this.onWindow = options.onWindow;

    const { window, context } = GEOMETRY[sampleRate];
    this.windowSamples = window;
    this.windowMs = (window * 1000) / sampleRate;
    this.context = context;
    this.input = new Float32Array(context + window);
    this.pending = new Float32Array(window * 4);
    // onnxruntime reads the tensors' arrays at run time, so these wrap buffers we refill in place.
    this.feeds = {
      input: new Tensor('float32', this.input, [1, context + window]),
      state: new Tensor('float32', this.state, [2, 1, 128]),
      sr: new Tensor('int64', BigInt64Array.of(BigInt(sampleRate)), []),
    };
  }

  /** True between a `speech_start` and its `speech_end`. */
  get speaking(): boolean {
    return this.inSpeech;
  }

  /** Stream time up to which audio has been through the model. */
  get processedMs(): number {
    return this.toMs(this.processedSamples);
  }

  /** Speech probability of the most recent window. */
  get probability(): number {
    return this.lastProbability;
  }

  /**
   * Appends PCM (Int16, or Float32 in [-1, 1]) at `sampleRate`, in pieces of any size (Twilio: 160 samples),
   * and runs the model on every complete window. Resolves with the events those windows produced.
   */
  push(samples: Int16Array | Float32Array): Promise<readonly VadEvent[]> {
    this.enqueue(samples);
    // No complete window: nothing for this push to run (a drain already in flight picks up later windows).
    if (this.pendingEnd - this.pendingStart < this.windowSamples) return NOTHING_TO_DO;
    return this.schedule(() => this.drain());
  }

  /**
   * Runs what is queued and closes an utterance still open at the end of the audio (the caller hung up
   * mid-sentence). A trailing partial window is not scored; it stays queued in case more audio follows.
   */
  end(): Promise<readonly VadEvent[]> {
    return this.schedule(async () => {
      const events = await this.drain();
      if (!this.inSpeech) return events;
      const end = this.silenceStart >= 0 ? Math.min(this.silenceStart + this.padSamples, this.processedSamples) : this.processedSamples;
      return [...events, this.closeSpeech(end)];
    });
  }

  /** Forgets everything: model state, queued audio, speech state; stream time restarts at 0. */
  reset(): void {
    this.generation += 1;
    this.freshState = true;
    this.pendingStart = this.pendingEnd = 0;
    this.processedSamples = 0;
    this.lastProbability = 0;
    this.inSpeech = false;
    this.candidateStart = this.silenceStart = -1;
    this.speechStart = this.lastSpeechEnd = 0;
    this.ended = false;
  }

  private schedule(work: () => Promise<readonly VadEvent[]>): Promise<readonly VadEvent[]> {
    const run = this.tail.then(work);
    // A failed window fails the push that ran it, not every push after it.
    this.tail = run.catch(() => undefined);
    return run;
  }

  private enqueue(samples: Int16Array | Float32Array): void {
    const n = samples.length;
    if (this.pendingEnd + n > this.pending.length) {
      const queued = this.pendingEnd - this.pendingStart;
      if (queued + n > this.pending.length) {
        const bigger = new Float32Array(Math.max(this.pending.length * 2, queued + n));
        bigger.set(this.pending.subarray(this.pendingStart, this.pendingEnd));
        this.pending = bigger;
      } else {
        this.pending.copyWithin(0, this.pendingStart, this.pendingEnd);
      }
      this.pendingStart = 0;
      this.pendingEnd = queued;
    }
    const dst = this.pending;
    let at = this.pendingEnd;
    if (samples instanceof Int16Array) {
      for (let i = 0; i < n; i++) dst[at++] = samples[i]! / 32768;
    } else {
      dst.set(samples, at);
      at += n;
    }
    this.pendingEnd = at;
  }

  private async drain(): Promise<readonly VadEvent[]> {
    const generation = this.generation;
    const window = this.windowSamples;
    let events: VadEvent[] | undefined;
    while (this.pendingEnd - this.pendingStart >= window) {
      const input = this.input;
      const context = this.context;
      if (this.freshState) {
        this.state.fill(0);
        input.fill(0, 0, context);
        this.freshState = false;
      }
      const src = this.pending;
      const from = this.pendingStart;
      for (let i = 0; i < window; i++) input[context + i] = src[from + i]!;
      this.pendingStart += window;

      const out = await this.session.run(this.feeds);
      if (generation !== this.generation) return NO_EVENTS; // reset() while this window was in the model

      this.state.set(out.stateN!.data as Float32Array);
      // The next window is prefixed with the tail of this one; without it v5/v6 scores stay low.
      input.copyWithin(0, window, window + context);
      const probability = (out.output!.data as Float32Array)[0]!;
      const windowStart = this.processedSamples;
      this.processedSamples += window;
      this.lastProbability = probability;
      const event = this.step(probability, windowStart, this.processedSamples);
      if (event) (events ??= []).push(event);
      this.onWindow?.(probability, this.toMs(this.processedSamples));
      if (generation !== this.generation) return NO_EVENTS; // the callback reset the stream
    }
    return events ?? NO_EVENTS;
  }

  /** The speech/silence state machine, in samples; one call per window. */
  private step(p: number, windowStart: number, windowEnd: number): VadEvent | undefined {
    if (!this.inSpeech) {
      if (p >= this.threshold) {
        if (this.candidateStart < 0) this.candidateStart = windowStart;
      } else if (p < this.negThreshold) {
        this.candidateStart = -1; // a burst shorter than minSpeechMs: noise, a click, a cough
      }
      const resuming = this.ended && this.candidateStart >= 0 && this.candidateStart - this.lastSpeechEnd < this.resumeWithinSamples;
      const needed = resuming ? Math.min(this.resumeMinSpeechSamples, this.minSpeechSamples) : this.minSpeechSamples;
      if (this.candidateStart >= 0 && windowEnd - this.candidateStart >= needed) {
        this.inSpeech = true;
        this.silenceStart = -1;
        this.speechStart = Math.max(this.candidateStart - this.padSamples, this.lastSpeechEnd);
        this.candidateStart = -1;
        return { kind: 'speech_start', atMs: this.toMs(this.speechStart) };
      }
      return undefined;
    }
    if (p >= this.threshold) {
      const wasQuiet = this.silenceStart >= 0;
      this.silenceStart = -1;
      if (wasQuiet && this.reportPauses) return { kind: 'speech_quiet', atMs: this.toMs(windowStart), quiet: false };
    } else if (p < this.negThreshold) {
      const quietNow = this.silenceStart < 0;
      if (quietNow) this.silenceStart = windowStart;
      if (windowEnd - this.silenceStart >= this.minSilenceSamples) {
        return this.closeSpeech(Math.min(this.silenceStart + this.padSamples, windowEnd));
      }
      if (quietNow && this.reportPauses) return { kind: 'speech_quiet', atMs: this.toMs(windowStart), quiet: true };
    }
    return undefined;
  }

  private closeSpeech(endSample: number): VadEvent {
    this.inSpeech = false;
    this.silenceStart = -1;
    this.candidateStart = -1;
    this.lastSpeechEnd = endSample;
    this.ended = true;
    return { kind: 'speech_end', atMs: this.toMs(endSample), durationMs: this.toMs(endSample - this.speechStart) };
  }

  private toMs(samples: number): number {
    return (samples * 1000) / this.sampleRate;
  }
}
