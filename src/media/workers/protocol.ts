import type { MediaEvent, VadOptions } from '../media-engine.js';

/** Main thread -> media worker. */
export type ToWorker =
  | { kind: 'open'; callId: string; vad: VadOptions }
  | { kind: 'frame'; callId: string; mulaw: Uint8Array }
  | { kind: 'close'; callId: string }
  /** Test hook: makes the worker throw, to prove crash recovery. */
  | { kind: 'crash' }
  /** Test hook: blocks the worker's event loop for `ms` every 100 ms for `forMs`, to prove lag handling. */
  | { kind: 'stall'; ms: number; forMs: number };

/** Media worker -> main thread. */
export type FromWorker =
  | { kind: 'ready' }
  | { kind: 'event'; callId: string; event: Exclude<MediaEvent, { kind: 'failed' }> }
  | { kind: 'call_error'; callId: string; detail: string }
  /** Event-loop lag of the worker over the last report interval, and how long VAD took per window. */
  | { kind: 'stats'; lagP99Ms: number; vadMeanMs: number; calls: number };
