import { Queue, UnrecoverableError, Worker, type Job as BullJob } from 'bullmq';
import { Redis } from 'ioredis';
import {
  assertConsumerOptions,
  assertJobOptions,
  assertQueueName,
  JobQueueError,
  KEEP_COMPLETED,
  KEEP_FAILED,
  toError,
  UnrecoverableJobError,
  type Consumer,
  type ConsumerOptions,
  type Job,
  type JobHandler,
  type JobOptions,
  type JobQueue,
  type QueueCounts,
} from './queue.js';

/** Options for the Redis-backed queue. */
export interface BullMqJobQueueOptions {
  /** `redis://` or `rediss://` URL. */
  url: string;
  /** Key prefix for every queue; lets several deployments (or tests) share one Redis. Default `vocelio`. */
  prefix?: string;
  /** Where connection errors and failing `onFailed` hooks go; default `console.error`. */
  onError?: (error: Error) => void;
}

const DAY_S = 24 * 60 * 60;

class BullMqConsumer implements Consumer {
  /** `onFailed` hooks still running; close() waits for them as well as for the worker's jobs. */
  readonly hooks = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;

  constructor(
    readonly worker: Worker,
    private readonly onClosed: (consumer: BullMqConsumer) => void,
  ) {}

  track(hook: Promise<void>): void {
    this.hooks.add(hook);
    void hook.finally(() => this.hooks.delete(hook));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.worker.close();
        while (this.hooks.size > 0) await Promise.all([...this.hooks]);
      } finally {
        this.onClosed(this);
      }
    })();
    return this.closing;
  }
}

/**
 * The production queue: BullMQ on Redis. One shared connection serves every Queue and Worker of this
 * instance; each Worker also opens its own blocking connection (BullMQ duplicates it), closed with it.
 */
export class BullMqJobQueue implements JobQueue {
  readonly backend = 'bullmq' as const;
  private readonly connection: Redis;
  private readonly prefix: string;
  private readonly onError: (error: Error) => void;
  private readonly queues = new Map<string, Queue>();
  private readonly consumers = new Set<BullMqConsumer>();
  private closing: Promise<void> | undefined;

  constructor(opts: BullMqJobQueueOptions) {
    this.prefix = opts.prefix ?? 'vocelio';
    this.onError = opts.onError ?? ((error) => console.error('[queue] bullmq:', error));
    // BullMQ Workers refuse anything but null: a command caught in a Redis restart then waits for Redis to
    // return instead of rejecting mid-job. Queue.add shares this connection, so it waits too.
    this.connection = new Redis(opts.url, { maxRetriesPerRequest: null });
    // Without a listener ioredis logs every reconnect failure as an unhandled error event.
    this.connection.on('error', (error: Error) => this.onError(error));
  }

  async add<T>(queue: string, name: string, data: T, opts: JobOptions = {}): Promise<string> {
    this.assertOpen();
    assertQueueName(queue);
    assertJobOptions(opts);
    const job = await this.queue(queue).add(name, data, {
      delay: opts.delayMs,
      attempts: opts.attempts ?? 1,
      backoff: opts.backoff && { type: opts.backoff.type, delay: opts.backoff.delayMs },
      jobId: opts.jobId,
    });
    // A duplicate jobId makes BullMQ return the existing job, whose id is that jobId.
    if (job.id === undefined) throw new Error(`BullMQ returned no id for a job added to ${queue}`);
    return job.id;
  }

  consume<T>(queue: string, handler: JobHandler<T>, opts: ConsumerOptions<T> = {}): Consumer {
    this.assertOpen();
    assertQueueName(queue);
    assertConsumerOptions(opts);
    const worker = new Worker<T, void, string>(
      queue,
      async (bullJob) => {
        try {
          await handler(toJob(bullJob, bullJob.attemptsMade + 1));
        } catch (thrown) {
          // BullMQ reads .message and .stack of whatever it catches, so never hand it a bare string.
          if (!(thrown instanceof UnrecoverableJobError)) throw toError(thrown);
          const unrecoverable = new UnrecoverableError(thrown.message);
          unrecoverable.cause = thrown;
          throw unrecoverable;
        }
      },
      {
        connection: this.connection,
        prefix: this.prefix,
        concurrency: opts.concurrency ?? 1,
        // BullMQ keeps the limiter's window in Redis per queue, so it caps all workers in all processes.
        limiter: opts.limiter && { max: opts.limiter.max, duration: opts.limiter.durationMs },
        // BullMQ 5.81 can start its rate-limit sleep just after close() aborted it, and close() then waits the
        // whole window; capping the sleep bounds that (the cost: one extra fetch a second while limited).
        maximumRateLimitDelay: 1_000,
      },
    );
    // A Worker without an 'error' listener would crash the process on its first connection error.
    worker.on('error', (error) => this.onError(error));
    const consumer = new BullMqConsumer(worker, (closed) => this.consumers.delete(closed));
    const { onFailed } = opts;
    if (onFailed) {
      // 'failed' fires after every failed attempt, once the job is stored as retrying or failed.
      worker.on('failed', (bullJob, error) => {
        if (!bullJob) return;
        const unrecoverable = error.name === 'UnrecoverableError';
        if (!unrecoverable && bullJob.attemptsMade < (bullJob.opts.attempts ?? 1)) return;
        const original = unrecoverable && error.cause instanceof UnrecoverableJobError ? error.cause : error;
        consumer.track(
          (async () => {
            try {
              await onFailed(toJob(bullJob, bullJob.attemptsMade), original);
            } catch (hookError) {
              this.onError(toError(hookError));
            }
          })(),
        );
      });
    }
    this.consumers.add(consumer);
    return consumer;
  }

  async counts(queue: string): Promise<QueueCounts> {
    this.assertOpen();
    assertQueueName(queue);
    const counts = await this.queue(queue).getJobCounts('waiting', 'delayed', 'active', 'completed', 'failed');
    return {
      waiting: counts.waiting ?? 0,
      delayed: counts.delayed ?? 0,
      active: counts.active ?? 0,
      completed: counts.completed ?? 0,
      failed: counts.failed ?? 0,
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // Workers first: they finish active jobs, which may still add jobs through the Queues.
      this.report(await Promise.allSettled([...this.consumers].map((consumer) => consumer.close())));
      this.report(await Promise.allSettled([...this.queues.values()].map((queue) => queue.close())));
      this.queues.clear();
      // quit() lets in-flight replies arrive; if Redis is gone it rejects and we just drop the socket.
      await this.connection.quit().catch(() => this.connection.disconnect());
    })();
    return this.closing;
  }

  /** One failing close must not keep the others from releasing their connections. */
  private report(results: PromiseSettledResult<void>[]): void {
    for (const result of results) if (result.status === 'rejected') this.onError(toError(result.reason));
  }

  private assertOpen(): void {
    if (this.closing) throw new JobQueueError('closed', 'the job queue is closed');
  }

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, {
        connection: this.connection,
        prefix: this.prefix,
        // Finished jobs are kept a while for counts and inspection, and so a jobId stays deduplicated.
        defaultJobOptions: {
          removeOnComplete: { count: KEEP_COMPLETED, age: DAY_S },
          removeOnFail: { count: KEEP_FAILED, age: 7 * DAY_S },
        },
      });
      queue.on('error', (error) => this.onError(error));
      this.queues.set(name, queue);
    }
    return queue;
  }
}

function toJob<T>(bullJob: BullJob<T, void, string>, attempt: number): Job<T> {
  if (bullJob.id === undefined) throw new Error(`BullMQ handed out a job without an id on ${bullJob.queueName}`);
  return { id: bullJob.id, queue: bullJob.queueName, name: bullJob.name, data: bullJob.data, attempt };
}
