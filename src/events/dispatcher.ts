import type { Consumer, Job, JobQueue } from '../queue/queue.js';
import type { EventConsumer, EventConsumerRegistry } from './consumers.js';
import type { DeliveriesService } from './deliveries.service.js';
import type { EventFeed } from './event-feed.js';
import type { EventsService } from './events.service.js';
import type { StoredEvent } from './event-types.js';

/** A delivery job: one event for one consumer. */
interface DeliveryJob {
  eventId: string;
}

/** What the dispatcher needs. */
export interface EventDispatcherOptions {
  events: EventsService;
  deliveries: DeliveriesService;
  feed: EventFeed;
  queue: JobQueue;
  consumers: EventConsumerRegistry;
  log: (msg: string) => void;
  /** How often the whole undispatched backlog is looked over again; default 60 s. */
  sweepMs?: number;
}

const DEFAULT_ATTEMPTS = 10;
const DEFAULT_BACKOFF_MS = 1000;
const DEFAULT_CONCURRENCY = 4;
const PAGE = 500;

/** The queue that carries one consumer's deliveries: its own, so a slow or failing consumer delays nobody else. */
export const consumerQueue = (consumer: string): string => `events-${consumer}`;

/**
 * Hands durable events to consumers through the job queue, at least once. New events come from the feed as
 * they are stamped; a sweep at start and every `sweepMs` goes over every undispatched event again and
 * enqueues what is missing, which recovers jobs the in-process queue forgot in a restart (BullMQ keeps them
 * in Redis) and never lets an event starve behind others. Jobs are deduplicated by `<event>.<consumer>`, and
 * the delivery record makes handling once per event even when two dispatchers (or a job and its replay) race.
 */
export class EventDispatcher {
  private readonly workers: Consumer[] = [];
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly opts: EventDispatcherOptions) {}

  /** Starts each consumer's queue worker, follows the feed and runs the first sweep. */
  async start(): Promise<void> {
    const { queue, consumers, feed } = this.opts;
    for (const consumer of consumers.all()) {
      this.workers.push(
        queue.consume<DeliveryJob>(consumerQueue(consumer.name), (job) => this.deliver(consumer, job), {
          concurrency: consumer.concurrency ?? DEFAULT_CONCURRENCY,
          onFailed: (job, error) => this.giveUp(consumer, job, error),
        }),
      );
    }
    this.unsubscribe = feed.subscribe((event) => {
      this.dispatch([{ event, done: new Set() }]).catch((err: unknown) => this.report('dispatch', err));
    });
    await feed.start();
    await this.sweep();
    this.timer = setInterval(() => void this.sweep().catch((err: unknown) => this.report('sweep', err)), this.opts.sweepMs ?? 60_000);
    this.timer.unref();
  }

  /** Enqueues every undispatched event's missing deliveries and marks finished events dispatched. */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        await this.opts.feed.sync();
        let after = 0;
        for (;;) {
          const page = await this.opts.deliveries.pending(after, PAGE);
          if (page.length === 0) break;
          await this.dispatch(page);
          after = page[page.length - 1]!.event.seq;
          if (page.length < PAGE || this.closed) break;
        }
      } finally {
        this.sweeping = null;
      }
    })();
    return this.sweeping;
  }

  /** Stops following the feed and sweeping, then lets active deliveries finish. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.unsubscribe?.();
    await this.sweeping?.catch(() => {});
    await Promise.all(this.workers.map((w) => w.close()));
  }

  private async dispatch(pending: { event: StoredEvent; done: Set<string> }[]): Promise<void> {
    const finished: string[] = [];
    for (const { event, done } of pending) {
      const missing = this.opts.consumers.forType(event.type).filter((c) => !done.has(c.name));
      if (missing.length === 0) {
        finished.push(event.id);
        continue;
      }
      if (this.closed) return;
      for (const consumer of missing) {
        const backoff = { type: 'exponential' as const, delayMs: consumer.backoffMs ?? DEFAULT_BACKOFF_MS };
        // The id makes re-adding a no-op while the queue knows the job (waiting, retrying, or kept after it ran).
        await this.opts.queue.add<DeliveryJob>(consumerQueue(consumer.name), event.type, { eventId: event.id }, { jobId: `${event.id}.${consumer.name}`, attempts: consumer.attempts ?? DEFAULT_ATTEMPTS, backoff });
      }
    }
    await this.opts.deliveries.markDispatched(finished);
  }

  private async deliver(consumer: EventConsumer, job: Job<DeliveryJob>): Promise<void> {
    const { deliveries, events } = this.opts;
    const event = await events.byId(job.data.eventId);
    // Purged after being dispatched long ago: a replayed job has nothing left to do.
    if (!event) return;
    if (consumer.transactional === false) {
      if (await deliveries.isDone(event.id, consumer.name)) return;
      await consumer.handle(event, null);
      await deliveries.markHandled(event.id, consumer.name, job.attempt);
      return;
    }
    await deliveries.handleOnce(event.id, consumer.name, job.attempt, (tx) => consumer.handle(event, tx));
  }

  private async giveUp(consumer: EventConsumer, job: Job<DeliveryJob>, error: Error): Promise<void> {
    this.opts.log(`event ${job.data.eventId} (${job.name}): consumer ${consumer.name} gave up after ${job.attempt} attempts: ${error.message}`);
    await this.opts.deliveries.markDead(job.data.eventId, consumer.name, job.attempt, error.message);
  }

  private report(what: string, err: unknown): void {
    if (!this.closed) this.opts.log(`event ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
