// The media worker thread's entry point: the pool starts this module, which serves the thread's parent port.
import { parentPort, workerData } from 'node:worker_threads';
import { runMediaWorker } from './media-worker.js';
import type { MediaWorkerData } from './protocol.js';

if (!parentPort) throw new Error('media-worker-main must run in a worker thread');
await runMediaWorker(parentPort, (workerData ?? {}) as MediaWorkerData);
