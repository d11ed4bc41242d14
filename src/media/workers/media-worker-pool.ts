import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { siblingModule, startWorker } from '../../shared/worker-threads.js';
import type { MediaChannel, MediaEngine, MediaEvent, VadOptions } from '../media-engine.js';
import type { FromWorker, ToWorker } from './protocol.js';

/** Options for the pool. */
export interface MediaWorkerPoolOptions {
  /** Worker threads; default: cores - 1 (at least 1), leaving a core for the main thread's socket I/O. */
  size?: number;
  /** A worker whose event-loop lag p99 exceeds this takes no new calls until it recovers. */
  maxLagMs?: number;
  onLog?: (msg: string) => void;
}

interface Slot {
  id: number;
  worker: Worker;
  ready: Promise<void>;
  calls: Map<string, (e: MediaEvent) => void>;
  lagP99Ms: number;
  vadMeanMs: number;
}

/** Live figures of the pool, for metrics and benchmarks. */
export interface PoolStats {
  workers: number;
  calls: number;
  maxLagP99Ms: number;
  vadMeanMs: number;
}

/**
 * A call-affine pool of media worker threads: each call stays on one worker (its VAD state lives there),
 * new calls go to the least-loaded worker that is not lagging, and a crashed worker ends only its own
 * calls and is replaced.
 */
export class MediaWorkerPool implements MediaEngine {
  private readonly slots: Slot[] = [];
  private nextId = 0;
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
    return {
      workers: this.slots.length,
      calls,
      maxLagP99Ms: Math.max(0, ...this.slots.map((s) => s.lagP99Ms)),
      vadMeanMs: this.slots.reduce((m, s) => Math.max(m, s.vadMeanMs), 0),
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
      close: () => {
        if (!open) return;
        open = false;
        if (slot.calls.delete(callId)) this.post(slot, { kind: 'close', callId });
      },
    };
  }

  /** The id of the worker that carries `callId` (tests, diagnostics). */
  workerOf(callId: string): number | undefined {
    return this.slots.find((s) => s.calls.has(callId))?.id;
  }

  /** Ids of the workers, in pool order. */
  workerIds(): number[] {
    return this.slots.map((s) => s.id);
  }

  /** Test hook: makes worker `id` lag (blocks its event loop `ms` every 100 ms for `forMs`). */
  stallWorker(id: number, ms: number, forMs: number): void {
    const slot = this.slots.find((s) => s.id === id);
    if (slot) this.post(slot, { kind: 'stall', ms, forMs });
  }

  /** Test hook: crashes the worker that carries `callId`. */
  crashWorkerOf(callId: string): void {
    const slot = this.slots.find((s) => s.calls.has(callId));
    if (slot) this.post(slot, { kind: 'crash' });
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const timer of this.respawnTimers) clearTimeout(timer);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }

  /** Whether worker `id` currently takes new calls. */
  isHealthy(id: number): boolean {
    const slot = this.slots.find((s) => s.id === id);
    return slot !== undefined && slot.lagP99Ms <= this.maxLagMs;
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
    const worker = startWorker(siblingModule(import.meta.url, 'media-worker'));
    let slotReady = false;
    let markReady!: () => void;
    let failReady!: (err: Error) => void;
    const slot: Slot = {
      id: this.nextId++,
      worker,
      ready: new Promise<void>((resolve, reject) => {
        markReady = resolve;
        failReady = reject;
      }),
      calls: new Map(),
      lagP99Ms: 0,
      vadMeanMs: 0,
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
        case 'stats':
          slot.lagP99Ms = m.lagP99Ms;
          slot.vadMeanMs = m.vadMeanMs;
          break;
      }
    });
    worker.on('error', (err) => this.opts.onLog?.(`media worker ${slot.id} failed: ${err.message}`));
    worker.on('exit', (code) => {
      failReady(new Error(`media worker exited with code ${code} before it was ready`));
      const orphans = [...slot.calls.values()];
      slot.calls.clear();
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
