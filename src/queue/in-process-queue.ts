import {
  assertConsumerOptions,
  assertJobOptions,
  assertQueueName,
  backoffDelay,
  JobQueueError,
  KEEP_COMPLETED,
  KEEP_FAILED,
  toError,
  UnrecoverableJobError,
  type BackoffOptions,
  type Consumer,
  type ConsumerOptions,
  type Job,
  type JobHandler,
  type JobOptions,
  type JobQueue,
  type QueueCounts,
  type RateLimit,
} from './queue.js';

/** Options for the embedded queue. */
export interface InProcessJobQueueOptions {
  /** Where failures outside a job go (an `onFailed` hook that throws); default `console.error`. */
  onError?: (error: Error) => void;
}

const MAX_TIMEOUT_MS = 2 ** 31 - 1;

interface StoredJob {
  id: string;
  queue: string;
  name: string;
  data: unknown;
  attempts: number;
  backoff: BackoffOptions | undefined;
  failures: number;
}

/** FIFO with O(1) shift; a campaign can queue many thousands of jobs and Array#shift would be O(n). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

class QueueState {
  readonly waiting = new Fifo<StoredJob>();
  /** Delayed jobs' timers by job id; the timer's closure holds the job. */
  readonly delayed = new Map<string, NodeJS.Timeout>();
  readonly completed = new Fifo<string>();
  readonly failed = new Fifo<string>();
  /** Every id the queue still knows in any state: the jobId dedupe set. */
  readonly known = new Set<string>();
  readonly consumers = new Set<InProcessConsumer>();
  /** Start times (ms, ascending) inside the longest limiter window: a sliding-window log. */
  starts: number[] = [];
  limiterTimer: NodeJS.Timeout | undefined;
  active = 0;
}

class InProcessConsumer implements Consumer {
  running = 0;
  /** Running jobs and their failure hooks; close() waits for all of them. */
  readonly pending = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;

  constructor(
    readonly state: QueueState,
    readonly handler: JobHandler<unknown>,
    readonly opts: ConsumerOptions<unknown>,
    private readonly onClosed: (consumer: InProcessConsumer) => void,
  ) {}

  get accepting(): boolean {
    return this.closing === undefined && this.running < (this.opts.concurrency ?? 1);
  }

  track(work: Promise<void>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.pending.size > 0) await Promise.all([...this.pending]);
      this.onClosed(this);
    })();
    return this.closing;
  }
}

/**
 * The embedded job queue: same semantics as the BullMQ backend, state in memory, lost on exit. Timers are
 * ref'd on purpose (pending jobs are work the process should stay up for); `close()` clears all of them.
 */
export class InProcessJobQueue implements JobQueue {
  readonly backend = 'in-process' as const;
  private readonly queues = new Map<string, QueueState>();
  private readonly onError: (error: Error) => void;
  private nextId = 0;
  private closing: Promise<void> | undefined;

  constructor(opts: InProcessJobQueueOptions = {}) {
    this.onError = opts.onError ?? ((error) => console.error('[queue] in-process:', error));
  }

  async add<T>(queue: string, name: string, data: T, opts: JobOptions = {}): Promise<string> {
    this.assertOpen();
    assertQueueName(queue);
    assertJobOptions(opts);
    const state = this.state(queue);
    if (opts.jobId !== undefined && state.known.has(opts.jobId)) return opts.jobId;
    // Integer ids like BullMQ's own, which is also why custom ids may not be integers.
    const id = opts.jobId ?? String(++this.nextId);
    const job: StoredJob = {
      id,
      queue,
      name,
      data: cloneAsJson(data),
      attempts: opts.attempts ?? 1,
      backoff: opts.backoff,
      failures: 0,
    };
    state.known.add(id);
    if (opts.delayMs) this.delay(state, job, opts.delayMs);
    else {
      state.waiting.push(job);
      this.pump(state);
    }
    return id;
  }

  consume<T>(queue: string, handler: JobHandler<T>, opts: ConsumerOptions<T> = {}): Consumer {
    this.assertOpen();
    assertQueueName(queue);
    assertConsumerOptions(opts);
    const state = this.state(queue);
    const consumer = new InProcessConsumer(
      state,
      handler as JobHandler<unknown>,
      opts as ConsumerOptions<unknown>,
      (closed) => {
        state.consumers.delete(closed);
        // Its limiter may have been the strictest, and other consumers may have room.
        this.pump(state);
      },
    );
    state.consumers.add(consumer);
    this.pump(state);
    return consumer;
  }

  async counts(queue: string): Promise<QueueCounts> {
    this.assertOpen();
    assertQueueName(queue);
    const state = this.queues.get(queue);
    if (!state) return { waiting: 0, delayed: 0, active: 0, completed: 0, failed: 0 };
    return {
      waiting: state.waiting.length,
      delayed: state.delayed.size,
      active: state.active,
      completed: state.completed.length,
      failed: state.failed.length,
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const consumers = [...this.queues.values()].flatMap((state) => [...state.consumers]);
      await Promise.all(consumers.map((consumer) => consumer.close()));
      // Only now: a job failing while consumers drained may have scheduled a retry timer.
      for (const state of this.queues.values()) {
        for (const timer of state.delayed.values()) clearTimeout(timer);
        state.delayed.clear();
        clearTimeout(state.limiterTimer);
        state.limiterTimer = undefined;
      }
    })();
    return this.closing;
  }

  private assertOpen(): void {
    if (this.closing) throw new JobQueueError('closed', 'the job queue is closed');
  }

  private state(queue: string): QueueState {
    let state = this.queues.get(queue);
    if (!state) {
      state = new QueueState();
      this.queues.set(queue, state);
    }
    return state;
  }

  private delay(state: QueueState, job: StoredJob, ms: number): void {
    const dueAt = Date.now() + ms;
    const arm = (): void => {
      const left = dueAt - Date.now();
      // setTimeout fires at once for anything over ~24.8 days; a campaign can be scheduled further out.
      if (left > MAX_TIMEOUT_MS) {
        state.delayed.set(job.id, setTimeout(arm, MAX_TIMEOUT_MS));
        return;
      }
      state.delayed.set(
        job.id,
        setTimeout(() => {
          state.delayed.delete(job.id);
          state.waiting.push(job);
          this.pump(state);
        }, left),
      );
    };
    arm();
  }

  /** Starts as many waiting jobs as consumers' concurrency and the queue's rate limit allow. */
  private pump(state: QueueState): void {
    while (this.closing === undefined && state.waiting.length > 0) {
      const consumer = leastBusy(state.consumers);
      if (!consumer) return;
      const now = Date.now();
      const waitMs = this.limiterWait(state, now);
      if (waitMs > 0) {
        state.limiterTimer ??= setTimeout(() => {
          state.limiterTimer = undefined;
          this.pump(state);
        }, waitMs);
        return;
      }
      const job = state.waiting.shift();
      if (!job) return;
      state.starts.push(now);
      this.run(state, consumer, job);
    }
  }

  /**
   * Milliseconds until the next start fits every consumer's limiter (0 = now). Consumers of one queue
   * normally share one limiter; if they differ, the strictest wins, as one window is kept per queue.
   */
  private limiterWait(state: QueueState, now: number): number {
    const limits: RateLimit[] = [];
    for (const consumer of state.consumers) if (consumer.opts.limiter) limits.push(consumer.opts.limiter);
    const longest = Math.max(0, ...limits.map((limit) => limit.durationMs));
    const firstInWindow = state.starts.findIndex((t) => t > now - longest);
    state.starts = firstInWindow === -1 ? [] : state.starts.slice(firstInWindow);
    let wait = 0;
    for (const { max, durationMs } of limits) {
      const inWindow = state.starts.filter((t) => t > now - durationMs).length;
      if (inWindow >= max) {
        const oldestThatMustExpire = state.starts[state.starts.length - max] ?? now;
        wait = Math.max(wait, oldestThatMustExpire + durationMs - now);
      }
    }
    return wait > 0 ? Math.max(1, Math.ceil(wait)) : 0;
  }

  private run(state: QueueState, consumer: InProcessConsumer, job: StoredJob): void {
    state.active++;
    consumer.running++;
    const view: Job<unknown> = {
      id: job.id,
      queue: job.queue,
      name: job.name,
      data: job.data,
      attempt: job.failures + 1,
    };
    consumer.track(
      (async () => {
        let failure: Error | undefined;
        try {
          // Never call the handler synchronously inside add()/consume(), just as BullMQ never would.
          await Promise.resolve();
          await consumer.handler(view);
        } catch (thrown) {
          failure = toError(thrown);
        }
        state.active--;
        consumer.running--;
        if (failure) this.fail(state, consumer, job, view, failure);
        else retain(state, state.completed, job.id, KEEP_COMPLETED);
        this.pump(state);
      })(),
    );
  }

  private fail(state: QueueState, consumer: InProcessConsumer, job: StoredJob, view: Job<unknown>, error: Error): void {
    job.failures++;
    if (!(error instanceof UnrecoverableJobError) && job.failures < job.attempts) {
      const waitMs = backoffDelay(job.backoff, job.failures);
      if (waitMs > 0) this.delay(state, job, waitMs);
      else state.waiting.push(job);
      return;
    }
    retain(state, state.failed, job.id, KEEP_FAILED);
    const { onFailed } = consumer.opts;
    if (onFailed) {
      consumer.track(
        (async () => {
          try {
            await onFailed(view, error);
          } catch (hookError) {
            this.onError(toError(hookError));
          }
        })(),
      );
    }
  }
}

/** Keeps the last `keep` finished ids, forgetting older ones as BullMQ's removeOnComplete/removeOnFail do. */
function retain(state: QueueState, finished: Fifo<string>, id: string, keep: number): void {
  finished.push(id);
  while (finished.length > keep) {
    const forgotten = finished.shift();
    if (forgotten !== undefined) state.known.delete(forgotten);
  }
}

function leastBusy(consumers: Iterable<InProcessConsumer>): InProcessConsumer | undefined {
  let best: InProcessConsumer | undefined;
  for (const consumer of consumers) {
    if (consumer.accepting && (!best || consumer.running < best.running)) best = consumer;
  }
  return best;
}

/** Handlers get what BullMQ would give them (a JSON round trip), so embedded-only bugs cannot hide. */
function cloneAsJson(data: unknown): unknown {
  if (data === undefined) return undefined;
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (error) {
    throw new JobQueueError('invalid_options', `job data is not JSON-serializable: ${toError(error).message}`);
  }
  if (json === undefined) throw new JobQueueError('invalid_options', 'job data is not JSON-serializable');
  return JSON.parse(json);
}
