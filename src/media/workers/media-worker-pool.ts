import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { ProviderError } from '../../shared/errors.js';
import { AsyncQueue } from '../../shared/async-queue.js';
import { siblingModule, startWorker } from '../../shared/worker-threads.js';
import type { MediaChannel, MediaEngine, MediaEvent, VadOptions } from '../media-engine.js';
import type { TtsOptions } from '../providers.js';
import type { FromWorker, MediaWorkerData, ToWorker } from './protocol.js';

/** Options for the pool. */
export interface MediaWorkerPoolOptions {
  /** Worker threads; default: cores - 1 (at least 1), leaving a core for the main thread's socket I/O. */
  size?: number;
  /** A worker whose event-loop lag p99 exceeds this takes no new calls until it recovers. */
  maxLagMs?: number;
  /** Directory of Piper voices (`<name>.onnx` + `<name>.onnx.json`), loaded lazily by each worker. */
  voicesDir?: string;
  onLog?: (msg: string) => void;
  /**
   * Starts one worker thread on `workerData`; default: the media worker (`media-worker-main`). Tests pass one
   * that starts a wrapper of it (fault injection), so no test hook ships in the worker itself.
   */
  spawnWorker?: (workerData: MediaWorkerData) => Worker;
}

interface Slot {
  /** The worker's thread id, kept from its start (Node sets `threadId` to -1 once the thread exits). */
  id: number;
  worker: Worker;
  ready: Promise<void>;
  calls: Map<string, (e: MediaEvent) => void>;
  tts: Map<number, { callId: string; chunks: AsyncQueue<Uint8Array> }>;
  lagP99Ms: number;
  vadMeanMs: number;
  ttsSynthMs: number;
  ttsAudioMs: number;
}

/** One worker thread's figures. */
export interface WorkerStats {
  /** The worker's thread id (as `workerOf` returns); a replaced worker has a new one. */
  id: number;
  /** Calls whose media this worker carries. */
  calls: number;
  /** Event-loop delay p99 beyond the sampling resolution, over the worker's last report interval (1 s). */
  lagP99Ms: number;
  /** Whether it takes new calls (its lag is within `maxLagMs`). */
  healthy: boolean;
  /** Mean VAD time per frame over the last report interval. */
  vadMeanMs: number;
  /** Time its event loop was busy / idle since the thread started (Node's event-loop utilization), ms. */
  busyMs: number;
  idleMs: number;
}

/** Live figures of the pool, for metrics and benchmarks. */
export interface PoolStats {
  workers: number;
  calls: number;
  /** Each worker, in pool order; differences of `busyMs` between two reads give a window's CPU use. */
  perWorker: WorkerStats[];
  maxLagP99Ms: number;
  vadMeanMs: number;
  /**
   * Piper's real-time factor over the last report interval, all workers: synthesis time / audio duration
   * (0.1 = ten times faster than real time). Null when nothing was synthesized in the interval.
   */
  ttsRtf: number | null;
  /** Completed synthesis requests since the pool started, with their worker-measured synthesis time and audio. */
  ttsTotals: { requests: number; synthMs: number; audioMs: number };
}

/**
 * A call-affine pool of media worker threads: each call stays on one worker (its VAD state lives there),
 * new calls go to the least-loaded worker that is not lagging, and a crashed worker ends only its own
 * calls and is replaced.
 */
export class MediaWorkerPool implements MediaEngine {
  private readonly slots: Slot[] = [];
  private nextRequestId = 0;
  private readonly ttsTotals = { requests: 0, synthMs: 0, audioMs: 0 };
  private closing = false;
  // Consecutive exits of workers that never became ready: a model that cannot load must not respawn in a tight loop.
  private failedStarts = 0;
  private readonly respawnTimers = new Set<NodeJS.Timeout>();
  private readonly maxLagMs: number;

  private constructor(private readonly opts: MediaWorkerPoolOptions) {
    this.maxLagMs = opts.maxLagMs ?? 20;
  }

  /** Starts the workers and waits until each has loaded its models. */
  static async start(opts: MediaWorkerPoolOptions = {}): Promise<MediaWorkerPool> {
    const pool = new MediaWorkerPool(opts);
    const size = opts.size ?? Math.max(1, availableParallelism() - 1);
    for (let i = 0; i < size; i++) pool.slots.push(pool.spawn());
    await Promise.all(pool.slots.map((s) => s.ready));
    return pool;
  }

  /** Current figures. */
  stats(): PoolStats {
    const calls = this.slots.reduce((n, s) => n + s.calls.size, 0);
    const ttsSynthMs = this.slots.reduce((n, s) => n + s.ttsSynthMs, 0);
    const ttsAudioMs = this.slots.reduce((n, s) => n + s.ttsAudioMs, 0);
    return {
      workers: this.slots.length,
      calls,
      maxLagP99Ms: Math.max(0, ...this.slots.map((s) => s.lagP99Ms)),
      vadMeanMs: this.slots.reduce((m, s) => Math.max(m, s.vadMeanMs), 0),
      ttsRtf: ttsAudioMs > 0 ? ttsSynthMs / ttsAudioMs : null,
      ttsTotals: { ...this.ttsTotals },
      perWorker: this.slots.map((s) => {
        const { active, idle } = s.worker.performance.eventLoopUtilization();
        return { id: s.id, calls: s.calls.size, lagP99Ms: s.lagP99Ms, healthy: s.lagP99Ms <= this.maxLagMs, vadMeanMs: s.vadMeanMs, busyMs: active, idleMs: idle };
      }),
    };
  }

  open(callId: string, vad: VadOptions, onEvent: (event: MediaEvent) => void): MediaChannel {
    const slot = this.pick();
    slot.calls.set(callId, onEvent);
    this.post(slot, { kind: 'open', callId, vad });
    let open = true;
    return {
      push: (mulaw) => {
        if (open && slot.calls.has(callId)) this.post(slot, { kind: 'frame', callId, mulaw }, [mulaw.buffer as ArrayBuffer]);
      },
      synthesize: (text, options) => this.synthesize(slot, callId, () => open, text, options),
      close: () => {
        if (!open) return;
        open = false;
        // The worker drops the call's synthesis on close; its iterations end here without waiting for that.
        for (const [requestId, request] of slot.tts) {
          if (request.callId !== callId) continue;
          slot.tts.delete(requestId);
          request.chunks.abort();
        }
        if (slot.calls.delete(callId)) this.post(slot, { kind: 'close', callId });
      },
    };
  }

  private async *synthesize(slot: Slot, callId: string, isOpen: () => boolean, text: string, options: TtsOptions): AsyncGenerator<Uint8Array> {
    const { signal } = options;
    if (signal.aborted) return;
    if (!this.slots.includes(slot)) throw new ProviderError('piper', `the media worker of call ${callId} exited`, true);
    if (!isOpen() || !slot.calls.has(callId)) throw new ProviderError('piper', `call ${callId} has no open media channel`, false);
    const requestId = this.nextRequestId++;
    const chunks = new AsyncQueue<Uint8Array>();
    slot.tts.set(requestId, { callId, chunks });
    const onAbort = () => chunks.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const { voice, speed, speakerId } = options;
    this.post(slot, { kind: 'tts', callId, requestId, text, voice, speed, ...(speakerId === undefined ? {} : { speakerId }) });
    try {
      yield* chunks;
    } finally {
      signal.removeEventListener('abort', onAbort);
      // Still registered = the worker has not finished it (aborted, or the consumer stopped early): drop it there.
      if (slot.tts.delete(requestId) && this.slots.includes(slot)) this.post(slot, { kind: 'tts_cancel', requestId });
    }
  }

  /** The id of the worker that carries `callId` (tests, diagnostics). */
  workerOf(callId: string): number | undefined {
    return this.slots.find((s) => s.calls.has(callId))?.id;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const timer of this.respawnTimers) clearTimeout(timer);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }

  // Least-loaded among the healthy; if every worker lags, still the least loaded: refusing the call would be worse.
  private pick(): Slot {
    const healthy = this.slots.filter((s) => s.lagP99Ms <= this.maxLagMs);
    const candidates = healthy.length > 0 ? healthy : this.slots;
    const slot = candidates.reduce((best, s) => (s.calls.size < best.calls.size ? s : best), candidates[0]!);
    if (!slot) throw new Error('media worker pool is closed');
    return slot;
  }

  private post(slot: Slot, msg: ToWorker, transfer: ArrayBuffer[] = []): void {
    slot.worker.postMessage(msg, transfer);
  }

  private spawn(): Slot {
    const workerData: MediaWorkerData = { voicesDir: this.opts.voicesDir };
    const worker = this.opts.spawnWorker ? this.opts.spawnWorker(workerData) : startWorker(siblingModule(import.meta.url, 'media-worker-main'), { workerData });
    let slotReady = false;
    let markReady!: () => void;
    let failReady!: (err: Error) => void;
    const slot: Slot = {
      id: worker.threadId,
      worker,
      ready: new Promise<void>((resolve, reject) => {
        markReady = resolve;
        failReady = reject;
      }),
      calls: new Map(),
      tts: new Map(),
      lagP99Ms: 0,
      vadMeanMs: 0,
      ttsSynthMs: 0,
      ttsAudioMs: 0,
    };
    worker.on('message', (m: FromWorker) => {
      switch (m.kind) {
        case 'ready':
          slotReady = true;
          this.failedStarts = 0;
          markReady();
          break;
        case 'event':
          slot.calls.get(m.callId)?.(m.event);
          break;
        case 'call_error': {
          const handler = slot.calls.get(m.callId);
          slot.calls.delete(m.callId);
          handler?.({ kind: 'failed', reason: 'error', detail: m.detail });
          break;
        }
        case 'tts_audio':
          slot.tts.get(m.requestId)?.chunks.push(m.mulaw);
          break;
        case 'tts_end': {
          this.ttsTotals.requests++;
          this.ttsTotals.synthMs += m.synthMs;
          this.ttsTotals.audioMs += m.audioMs;
          const request = slot.tts.get(m.requestId);
          slot.tts.delete(m.requestId);
          request?.chunks.end();
          break;
        }
        case 'tts_error': {
          const request = slot.tts.get(m.requestId);
          slot.tts.delete(m.requestId);
          request?.chunks.fail(new ProviderError('piper', m.detail, false));
          break;
        }
        case 'log':
          this.opts.onLog?.(`media worker ${slot.id}: ${m.message}`);
          break;
        case 'stats':
          slot.lagP99Ms = m.lagP99Ms;
          slot.vadMeanMs = m.vadMeanMs;
          slot.ttsSynthMs = m.ttsSynthMs;
          slot.ttsAudioMs = m.ttsAudioMs;
          break;
      }
    });
    worker.on('error', (err) => this.opts.onLog?.(`media worker ${slot.id} failed: ${err.message}`));
    worker.on('exit', (code) => {
      failReady(new Error(`media worker exited with code ${code} before it was ready`));
      const orphans = [...slot.calls.values()];
      slot.calls.clear();
      const speech = [...slot.tts.values()];
      slot.tts.clear();
      for (const { chunks } of speech) chunks.fail(new ProviderError('piper', `media worker exited with code ${code}`, true));
      const i = this.slots.indexOf(slot);
      if (i !== -1) this.slots.splice(i, 1);
      // Only this worker's calls end; the others never notice.
      for (const handler of orphans) handler({ kind: 'failed', reason: 'worker_crashed', detail: `media worker exited with code ${code}` });
      if (this.closing) return;
      if (!slotReady) this.failedStarts++;
      // 0 s after a crash of a working worker; 1, 2, 4 ... 30 s while new workers keep failing to start.
      const delay = this.failedStarts === 0 ? 0 : Math.min(30_000, 1000 * 2 ** (this.failedStarts - 1));
      const respawn = () => {
        if (this.closing) return;
        const replacement = this.spawn();
        this.slots.push(replacement);
        replacement.ready.catch((err: Error) => this.opts.onLog?.(err.message));
      };
      if (delay === 0) respawn();
      else {
        this.opts.onLog?.(`media worker failed to start; retrying in ${delay / 1000} s`);
        const timer = setTimeout(() => {
          this.respawnTimers.delete(timer);
          respawn();
        }, delay);
        this.respawnTimers.add(timer);
      }
    });
    return slot;
  }
}
