// The job-queue seam: campaign dialing, webhook delivery, billing sync and recording post-processing are
// written against `JobQueue` only, so the embedded default (in-process) and production (BullMQ on Redis)
// run the same code paths. Both implementations pass the contract in `queue-contract.ts`.

/** How a job is retried after a failed attempt; mirrors BullMQ's built-in strategies. */
export interface BackoffOptions {
  /** `fixed` waits `delayMs` every time; `exponential` waits `delayMs * 2^(failures - 1)`. */
  type: 'fixed' | 'exponential';
  delayMs: number;
}

/** Per-job options accepted by `JobQueue.add`. */
export interface JobOptions {
  /** Run no earlier than this many milliseconds from now. */
  delayMs?: number;
  /** Total tries including the first; default 1 (no retry). */
  attempts?: number;
  /** Wait between tries; without it a failed job is retried at once. */
  backoff?: BackoffOptions;
  /**
   * Deduplication key: adding a job whose id is still known to the queue (waiting, delayed, active, or
   * kept as completed/failed) is a no-op that returns the same id. Must not be an integer or contain ':'.
   */
  jobId?: string;
}

/** One attempt at a job, as a handler sees it. */
export interface Job<T> {
  id: string;
  queue: string;
  name: string;
  data: T;
  /** 1-based number of this try. */
  attempt: number;
}

/**
 * Does the work of one job; a rejection is a failed attempt, `UnrecoverableJobError` fails the job for good.
 * Delivery is at least once (BullMQ re-runs a job whose worker died mid-way), so handlers must be idempotent.
 */
export type JobHandler<T> = (job: Job<T>) => Promise<void>;

/** Caps how many jobs of a queue start per window, across every consumer of that queue. */
export interface RateLimit {
  max: number;
  durationMs: number;
}

/** Options for one consumer of a queue. */
export interface ConsumerOptions<T = unknown> {
  /** Jobs this consumer runs at once; default 1. */
  concurrency?: number;
  /** Global per queue: with BullMQ it holds across all workers in all processes. */
  limiter?: RateLimit;
  /**
   * Called once when a job fails for good (attempts used up or `UnrecoverableJobError`), after the queue has
   * recorded it as failed: the place for dead-letter logging. Errors it throws are reported, not rethrown.
   */
  onFailed?: (job: Job<T>, error: Error) => void | Promise<void>;
}

/** A running consumer of one queue. */
export interface Consumer {
  /** Stops taking jobs and resolves once its active jobs have finished; remaining jobs stay queued. */
  close(): Promise<void>;
}

/** Jobs of one queue by state; completed and failed count only the jobs the queue still keeps. */
export interface QueueCounts {
  waiting: number;
  delayed: number;
  active: number;
  completed: number;
  failed: number;
}

/** A named-queue job system with retries, delays, dedupe, concurrency and a global rate limit. */
export interface JobQueue {
  readonly backend: 'bullmq' | 'in-process';
  /** Enqueues a job and returns its id (the existing id when `jobId` is a duplicate). */
  add<T>(queue: string, name: string, data: T, opts?: JobOptions): Promise<string>;
  /** Starts running the queue's jobs with `handler` until the consumer or the JobQueue is closed. */
  consume<T>(queue: string, handler: JobHandler<T>, opts?: ConsumerOptions<T>): Consumer;
  /** Snapshot of the queue's jobs by state. */
  counts(queue: string): Promise<QueueCounts>;
  /** Closes every consumer (waiting for active jobs), then releases timers and connections. */
  close(): Promise<void>;
}

/** Thrown by a handler to fail the job now, skipping any remaining attempts (BullMQ's `UnrecoverableError`). */
export class UnrecoverableJobError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnrecoverableJobError';
  }
}

/** A misuse of the queue API the caller can fix: bad options, or use after `close()`. */
export class JobQueueError extends Error {
  constructor(
    readonly code: 'invalid_options' | 'closed',
    message: string,
  ) {
    super(message);
    this.name = 'JobQueueError';
  }
}

// How many finished jobs each backend keeps (for counts, inspection and jobId dedupe) before forgetting them.
export const KEEP_COMPLETED = 1000;
export const KEEP_FAILED = 5000;

const invalid = (message: string): JobQueueError => new JobQueueError('invalid_options', message);

const isNonNegative = (n: number): boolean => Number.isFinite(n) && n >= 0;

/** Rejects a queue name BullMQ would reject, so code that works embedded also works in production. */
export function assertQueueName(queue: string): void {
  if (queue.length === 0) throw invalid('queue name must not be empty');
  if (queue.includes(':')) throw invalid(`queue name "${queue}" must not contain ':'`);
}

/** Rejects job options BullMQ would reject or misread; both backends call it, so they fail alike. */
export function assertJobOptions(opts: JobOptions): void {
  if (opts.delayMs !== undefined && !isNonNegative(opts.delayMs)) throw invalid('delayMs must be >= 0');
  if (opts.attempts !== undefined && !(Number.isInteger(opts.attempts) && opts.attempts >= 1)) {
    throw invalid('attempts must be an integer >= 1');
  }
  if (opts.backoff !== undefined && !isNonNegative(opts.backoff.delayMs)) {
    throw invalid('backoff.delayMs must be >= 0');
  }
  if (opts.jobId !== undefined) {
    // BullMQ's own ids are integers, so a custom integer id could collide with a generated one.
    if (opts.jobId.length === 0 || `${parseInt(opts.jobId, 10)}` === opts.jobId) {
      throw invalid(`jobId "${opts.jobId}" must be a non-empty, non-integer string`);
    }
    if (opts.jobId.includes(':')) throw invalid(`jobId "${opts.jobId}" must not contain ':'`);
  }
}

/** Rejects consumer options that cannot work. */
export function assertConsumerOptions(opts: ConsumerOptions<never>): void {
  if (opts.concurrency !== undefined && !(Number.isInteger(opts.concurrency) && opts.concurrency >= 1)) {
    throw invalid('concurrency must be an integer >= 1');
  }
  if (opts.limiter !== undefined) {
    const { max, durationMs } = opts.limiter;
    if (!(Number.isInteger(max) && max >= 1)) throw invalid('limiter.max must be an integer >= 1');
    if (!(Number.isFinite(durationMs) && durationMs > 0)) throw invalid('limiter.durationMs must be > 0');
  }
}

/** The wait before retry number `failures + 1`, the same arithmetic as BullMQ's built-in strategies. */
export function backoffDelay(backoff: BackoffOptions | undefined, failures: number): number {
  if (!backoff) return 0;
  switch (backoff.type) {
    case 'fixed':
      return backoff.delayMs;
    case 'exponential':
      return Math.round(2 ** (failures - 1) * backoff.delayMs);
    default: {
      const unknown: never = backoff.type;
      throw invalid(`unknown backoff type ${String(unknown)}`);
    }
  }
}

/** Turns whatever a handler threw into an Error, keeping the original as `cause`. */
export function toError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown), { cause: thrown });
}
