// A media worker thread for tests: the real worker (runMediaWorker) behind a port that also obeys fault
// messages, so tests can crash or stall one worker without any such hook in the shipped worker.
import { parentPort, workerData } from 'node:worker_threads';
import { runMediaWorker, type MediaWorkerPort } from '../../src/media/workers/media-worker.js';
import type { MediaWorkerData, ToWorker } from '../../src/media/workers/protocol.js';

/** What a test can ask of a fault-injecting worker. */
export type FaultMessage =
  /** Throw on the worker's event loop: the thread exits as a real crash would. */
  | { kind: 'fault:crash' }
  /** Block the event loop for `ms` every 100 ms during `forMs`: what a worker overloaded with work looks like. */
  | { kind: 'fault:stall'; ms: number; forMs: number };

const parent = parentPort;
if (!parent) throw new Error('fault-media-worker must run in a worker thread');

// The real worker starts listening only once its model is loaded; until then its messages wait here, as
// they would in the port's own queue.
let deliver: ((m: ToWorker) => void) | null = null;
const early: ToWorker[] = [];

function stall(ms: number, forMs: number): void {
  const until = Date.now() + forMs;
  const block = () => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      // busy on purpose: this is what a lagging worker looks like
    }
    if (Date.now() < until) setTimeout(block, 100);
  };
  block();
}

parent.on('message', (m: ToWorker | FaultMessage) => {
  switch (m.kind) {
    case 'fault:crash':
      setImmediate(() => {
        throw new Error('crash requested');
      });
      return;
    case 'fault:stall':
      stall(m.ms, m.forMs);
      return;
    default:
      if (deliver) deliver(m);
      else early.push(m);
  }
});

const port: MediaWorkerPort = {
  on: (_event, listener) => {
    deliver = listener;
    for (const m of early.splice(0)) listener(m);
  },
  postMessage: (m, transfer) => parent.postMessage(m, transfer),
};
await runMediaWorker(port, (workerData ?? {}) as MediaWorkerData);
