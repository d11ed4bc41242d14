import type { Worker } from 'node:worker_threads';
import { startWorker } from '../../src/shared/worker-threads.js';
import type { MediaWorkerData } from '../../src/media/workers/protocol.js';
import type { FaultMessage } from './fault-media-worker.js';

const FAULT_WORKER = new URL('./fault-media-worker.ts', import.meta.url);

/**
 * Media workers that can be crashed or stalled on request. Pass `spawn` as the pool's `spawnWorker`; the
 * pool's worker ids (`workerOf`, `stats().perWorker`) are thread ids, which is how faults find their worker.
 */
export class MediaFaults {
  private readonly workers = new Map<number, Worker>();

  /** Starts a fault-injecting media worker (the pool's `spawnWorker`). */
  readonly spawn = (workerData: MediaWorkerData): Worker => {
    const worker = startWorker(FAULT_WORKER, { workerData });
    const id = worker.threadId;
    this.workers.set(id, worker);
    worker.once('exit', () => this.workers.delete(id));
    return worker;
  };

  /** Crashes worker `id` (an uncaught exception on its thread). */
  crash(id: number | undefined): void {
    this.send(id, { kind: 'fault:crash' });
  }

  /** Makes worker `id` lag: its event loop blocks `ms` every 100 ms for `forMs`. */
  stall(id: number | undefined, ms: number, forMs: number): void {
    this.send(id, { kind: 'fault:stall', ms, forMs });
  }

  private send(id: number | undefined, message: FaultMessage): void {
    const worker = id === undefined ? undefined : this.workers.get(id);
    if (!worker) throw new Error(`no live fault-injecting media worker ${id}`);
    worker.postMessage(message);
  }
}
