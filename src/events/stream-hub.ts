import type { ServerResponse } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CallEventBus } from '../calls/call-events.js';
import { AppError } from '../shared/errors.js';
import type { EventFeed } from './event-feed.js';
import type { EventsService } from './events.service.js';
import { SseConnection, type CloseReason, type StreamFilter, type StreamLimits } from './sse-connection.js';

/** Options of the {@link EventStreamHub}. */
export interface StreamHubOptions {
  limits: StreamLimits;
  /** Open streams per organization on this node; more are refused with 429. */
  maxPerOrganization: number;
  metrics: Registry;
}

/** A reserved place for one stream of an organization; `serve` uses it, or `release` gives it back. */
export interface StreamSlot {
  organizationId: string;
  release(): void;
}

const REPLAY_PAGE = 500;

/**
 * This node's event streams: one subscription to the live call-event bus (which Redis fans out across
 * nodes) and one to the durable event feed (which PostgreSQL notifications fan out), routed to each
 * organization's open connections. A tenant's connections are only ever handed that tenant's events.
 */
export class EventStreamHub {
  private readonly byOrg = new Map<string, Set<SseConnection>>();
  private readonly reserved = new Map<string, number>();
  private readonly slowCuts: Counter;
  private readonly unsubscribe: (() => void)[];

  constructor(
    bus: CallEventBus,
    private readonly feed: EventFeed,
    private readonly events: EventsService,
    private readonly opts: StreamHubOptions,
  ) {
    const openCount = () => this.openCount;
    new Gauge({ name: 'vocelio_event_streams_open', help: 'event streams (SSE) open on this node', registers: [opts.metrics], collect() { this.set(openCount()); } });
    this.slowCuts = new Counter({ name: 'vocelio_event_streams_slow_cut_total', help: 'event streams cut off because the client did not read fast enough', registers: [opts.metrics] });
    this.unsubscribe = [
      bus.subscribe((e) => {
        for (const conn of this.byOrg.get(e.organizationId) ?? []) conn.live(e);
      }),
      feed.subscribe((e) => {
        for (const conn of this.byOrg.get(e.organizationId) ?? []) conn.durable(e);
      }),
    ];
  }

  /** Streams open on this node. */
  get openCount(): number {
    let n = 0;
    for (const set of this.byOrg.values()) n += set.size;
    return n;
  }

  /** Takes a place for a stream of the organization, or refuses with 429 when it has too many open here. */
  reserve(organizationId: string): StreamSlot {
    const taken = this.reserved.get(organizationId) ?? 0;
    if (taken >= this.opts.maxPerOrganization) {
      throw new AppError('too_many_streams', `at most ${this.opts.maxPerOrganization} event streams may be open at once per organization; close one first`, 429, { limit: this.opts.maxPerOrganization });
    }
    this.reserved.set(organizationId, taken + 1);
    let released = false;
    return {
      organizationId,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.reserved.get(organizationId) ?? 1) - 1;
        if (left > 0) this.reserved.set(organizationId, left);
        else this.reserved.delete(organizationId);
      },
    };
  }

  /**
   * Runs one stream on `res` until either side closes it: first the durable events after `lastEventId` (in
   * commit order, paced by what the client reads), then live and durable events as they happen.
   */
  async serve(slot: StreamSlot, res: ServerResponse, headers: Record<string, string | number | string[]>, filter: StreamFilter, lastEventId?: string): Promise<void> {
    const { organizationId } = slot;
    await this.feed.start();
    const conn = new SseConnection(organizationId, res, filter, this.opts.limits, (c, reason) => this.closed(c, reason, slot));
    // The client may have gone while the feed started; its close event has fired already.
    if (res.destroyed) return conn.close('client');
    let set = this.byOrg.get(organizationId);
    if (!set) this.byOrg.set(organizationId, (set = new Set()));
    // Registered before the replay reads, so nothing committed meanwhile falls between the two.
    set.add(conn);
    conn.open(headers);
    try {
      if (lastEventId !== undefined) await this.replay(conn, lastEventId, filter);
    } catch (err) {
      conn.close('error');
      throw err;
    }
    conn.goLive();
  }

  /** Sends the organization's durable events after `lastEventId`, page by page as the client reads them. */
  private async replay(conn: SseConnection, lastEventId: string, filter: StreamFilter): Promise<void> {
    const { organizationId } = conn;
    const from = await this.events.seqOf(organizationId, lastEventId);
    if (from === null) return conn.replayUnavailable(lastEventId);
    conn.lastSeq = from;
    let cursor = from;
    for (;;) {
      if (!(await conn.drained())) return;
      const page = await this.events.after(cursor, REPLAY_PAGE, { organizationId, subject: filter.callId });
      for (const event of page) conn.replayed(event);
      if (page.length < REPLAY_PAGE) return;
      cursor = page[page.length - 1]!.seq;
    }
  }

  /** Ends every stream (the server is closing); clients reconnect elsewhere with `Last-Event-ID`. */
  closeAll(): void {
    for (const set of [...this.byOrg.values()]) for (const conn of [...set]) conn.close('shutdown');
  }

  /** Stops routing events (after closeAll). */
  detach(): void {
    for (const off of this.unsubscribe) off();
  }

  private closed(conn: SseConnection, reason: CloseReason, slot: StreamSlot): void {
    if (reason === 'slow') this.slowCuts.inc();
    const set = this.byOrg.get(conn.organizationId);
    set?.delete(conn);
    if (set?.size === 0) this.byOrg.delete(conn.organizationId);
    slot.release();
  }
}
