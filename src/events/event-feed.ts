import type { Database } from '../db/client.js';
import { EVENTS_CHANNEL, type EventsService } from './events.service.js';
import { listen, type Listening } from './notifications.js';
import type { StoredEvent } from './event-types.js';

/** Receives each new durable event once, in commit (`seq`) order. */
export type FeedListener = (event: StoredEvent) => void;

/** Options of an {@link EventFeed}. */
export interface EventFeedOptions {
  /** How often to look without a notification (a lost NOTIFY, a pooler that cannot LISTEN). */
  pollMs: number;
  /** Rows per stamping and reading query. */
  batch?: number;
  onError: (err: Error) => void;
}

/**
 * This node's view of the outbox as it grows: woken by NOTIFY (sent when events commit and when they are
 * stamped, on any node) or by a slow poll, it stamps what committed and hands every event with a higher
 * sequence number than the last one it saw to its listeners, in order. One per process; the live stream and
 * the dispatcher both listen to it. Starts on first use.
 */
export class EventFeed {
  private readonly listeners = new Set<FeedListener>();
  private readonly batch: number;
  private lastSeq = 0;
  private starting: Promise<void> | null = null;
  private listening: Listening | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private dirty = false;
  private closed = false;
  /** Pass numbers: `sync()` waits for a pass that began after it was called. */
  private requested = 0;
  private completed = 0;
  private waiters: { pass: number; resolve: () => void }[] = [];

  constructor(
    private readonly database: Database,
    private readonly events: EventsService,
    private readonly opts: EventFeedOptions,
  ) {
    this.batch = opts.batch ?? 500;
  }

  /** Starts listening; resolves once the feed knows where "now" is. Idempotent. */
  start(): Promise<void> {
    if (this.starting) return this.starting;
    const starting = (async () => {
      this.lastSeq = await this.events.maxSeq();
      this.listening = await listen(this.database, EVENTS_CHANNEL, () => this.wake(), this.opts.onError);
      this.timer = setInterval(() => this.wake(), this.opts.pollMs);
      this.timer.unref();
      this.wake();
    })();
    // A failed start (the database unreachable for a moment) is tried again by the next caller.
    starting.catch(() => {
      if (this.starting === starting) this.starting = null;
    });
    this.starting = starting;
    return starting;
  }

  /** The sequence number of the last event handed to listeners. */
  get position(): number {
    return this.lastSeq;
  }

  /** Adds a listener for events after the current position; returns the unsubscribe function. */
  subscribe(listener: FeedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Runs a pass soon. Passes never overlap; a wake during one runs another after it. */
  wake(): void {
    if (this.closed || !this.listening) return;
    this.dirty = true;
    this.requested++;
    if (this.running) return;
    this.running = true;
    void this.drain();
  }

  /** Resolves once a pass that began after this call has finished: everything committed before is out. */
  async sync(): Promise<void> {
    await this.start();
    if (this.closed) return;
    const pass = this.requested + 1;
    const done = new Promise<void>((resolve) => this.waiters.push({ pass, resolve }));
    this.wake();
    await done;
  }

  /** Stops listening and polling; pending `sync` calls resolve. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.starting?.catch(() => {});
    await this.listening?.close();
    this.listeners.clear();
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  private async drain(): Promise<void> {
    try {
      while (this.dirty && !this.closed) {
        this.dirty = false;
        const pass = this.requested;
        await this.pass();
        this.completed = pass;
        this.waiters = this.waiters.filter((w) => (w.pass <= this.completed ? (w.resolve(), false) : true));
      }
    } catch (err) {
      // The next wake or poll tries again; a closing database is not worth a report.
      if (!this.closed) this.opts.onError(err instanceof Error ? err : new Error(String(err)));
      this.dirty = true;
    } finally {
      this.running = false;
    }
  }

  private async pass(): Promise<void> {
    for (;;) {
      const { stamped, busy } = await this.events.stamp(this.batch);
      // Busy: another node is stamping and its NOTIFY wakes us when it commits.
      if (busy || stamped < this.batch) break;
    }
    for (;;) {
      const page = await this.events.after(this.lastSeq, this.batch);
      for (const event of page) {
        this.lastSeq = event.seq;
        for (const listener of this.listeners) {
          try {
            listener(event);
          } catch (err) {
            this.opts.onError(err instanceof Error ? err : new Error(String(err)));
          }
        }
      }
      if (page.length < this.batch || this.closed) break;
    }
  }
}
