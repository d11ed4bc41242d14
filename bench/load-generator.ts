import { startWorker } from '../src/shared/worker-threads.js';
import type { LoadPlan, LoadResult, WorkerMessage } from './load-protocol.js';

/** Progress as the worker reports it. */
export type LoadProgress = Extract<WorkerMessage, { kind: 'progress' }>;

/** Callbacks of {@link runLoad}. */
export interface LoadHooks {
  /** The warm-up is over: reset whatever the caller measures alongside. */
  onMeasureStart(): void;
  onProgress(p: LoadProgress): void;
  /** Aborting stops scheduling new requests; the ones in flight still finish. */
  signal?: AbortSignal;
}

const WORKER_URL = new URL('./load-worker.ts', import.meta.url);

/** Runs the open-loop load generator in a worker thread and resolves with what it measured. */
export function runLoad(plan: LoadPlan, hooks: LoadHooks): Promise<LoadResult> {
  return new Promise<LoadResult>((resolve, reject) => {
    const worker = startWorker(WORKER_URL, { workerData: plan });
    let result: LoadResult | null = null;
    let failure: Error | null = null;
    const stop = () => worker.postMessage({ kind: 'stop' });
    hooks.signal?.addEventListener('abort', stop, { once: true });

    worker.on('message', (m: WorkerMessage) => {
      switch (m.kind) {
        case 'measure-start':
          hooks.onMeasureStart();
          break;
        case 'progress':
          hooks.onProgress(m);
          break;
        case 'done':
          result = m.result;
          // The worker has nothing left to do; ending it here saves waiting for its loop to drain.
          void worker.terminate();
          break;
        case 'failed':
          failure = new Error(`load generator failed: ${m.message}`);
          void worker.terminate();
          break;
        default: {
          const never: never = m;
          throw new Error(`unexpected worker message ${JSON.stringify(never)}`);
        }
      }
    });
    worker.on('error', (err) => {
      failure ??= err;
    });
    worker.on('exit', (code) => {
      hooks.signal?.removeEventListener('abort', stop);
      if (result) resolve(result);
      else reject(failure ?? new Error(`load generator exited with code ${code} before reporting`));
    });
  });
}
