import { and, asc, eq, gt, inArray, isNotNull, isNull, lt, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { eventDeliveries, events } from './events.table.js';
import { toStoredEvent } from './events.service.js';
import type { StoredEvent } from './event-types.js';

/** A stamped event not yet dispatched, with the consumers already done with it. */
export interface PendingEvent {
  event: StoredEvent;
  done: Set<string>;
}

/** The dispatcher's bookkeeping: which consumer is done with which event. */
export class DeliveriesService {
  constructor(private readonly db: Db) {}

  /** Undispatched stamped events after `seq`, in commit order, each with the consumers done with it. */
  async pending(afterSeq: number, limit: number): Promise<PendingEvent[]> {
    const rows = await this.db
      .select()
      .from(events)
      .where(and(isNull(events.dispatchedAt), isNotNull(events.seq), gt(events.seq, afterSeq)))
      .orderBy(asc(events.seq))
      .limit(limit);
    if (rows.length === 0) return [];
    const done = await this.db
      .select({ eventId: eventDeliveries.eventId, consumer: eventDeliveries.consumer })
      .from(eventDeliveries)
      .where(inArray(eventDeliveries.eventId, rows.map((r) => r.id)));
    const byEvent = new Map<string, Set<string>>();
    for (const d of done) {
      let set = byEvent.get(d.eventId);
      if (!set) byEvent.set(d.eventId, (set = new Set()));
      set.add(d.consumer);
    }
    return rows.map((row) => ({ event: toStoredEvent(row), done: byEvent.get(row.id) ?? new Set() }));
  }

  /** Marks events every consumer is done with, so later sweeps skip them. */
  async markDispatched(eventIds: readonly string[]): Promise<void> {
    if (eventIds.length === 0) return;
    await this.db.update(events).set({ dispatchedAt: sql`now()` }).where(and(inArray(events.id, [...eventIds]), isNull(events.dispatchedAt)));
  }

  /**
   * Runs `work` once per (event, consumer) inside one transaction with the delivery record: of any number of
   * deliveries of the same event, on any node, one commits the work, and the others find the record and
   * skip (on PostgreSQL a racing insert waits for the first transaction, then sees its row). A failure rolls
   * both back, so the next attempt runs it again. Returns whether `work` ran.
   */
  async handleOnce(eventId: string, consumer: string, attempt: number, work: (tx: Tx) => Promise<void>): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const claimed = await tx.insert(eventDeliveries).values({ eventId, consumer, outcome: 'handled', attempts: attempt }).onConflictDoNothing().returning({ eventId: eventDeliveries.eventId });
      if (claimed.length === 0) return false;
      await work(tx);
      return true;
    });
  }

  /** Whether the consumer is done with the event (handled or given up). */
  async isDone(eventId: string, consumer: string): Promise<boolean> {
    const [row] = await this.db.select({ eventId: eventDeliveries.eventId }).from(eventDeliveries).where(and(eq(eventDeliveries.eventId, eventId), eq(eventDeliveries.consumer, consumer)));
    return row !== undefined;
  }

  /** Records that the consumer handled the event (non-transactional consumers, after their work succeeded). */
  async markHandled(eventId: string, consumer: string, attempt: number): Promise<void> {
    await this.db.insert(eventDeliveries).values({ eventId, consumer, outcome: 'handled', attempts: attempt }).onConflictDoNothing();
  }

  /** Records that the consumer gave up on the event after its last attempt, with the last error. */
  async markDead(eventId: string, consumer: string, attempts: number, error: string): Promise<void> {
    await this.db
      .insert(eventDeliveries)
      .values({ eventId, consumer, outcome: 'dead', attempts, error: error.slice(0, 1000) })
      // A delivery racing in between handled it after all: that outcome stands.
      .onConflictDoNothing();
  }

  /** Deletes dispatched events older than `days` (their delivery records go with them); returns how many. */
  async purgeDispatched(days: number): Promise<number> {
    const gone = await this.db
      .delete(events)
      .where(and(isNotNull(events.dispatchedAt), lt(events.createdAt, sql`now() - make_interval(days => ${days})`)))
      .returning({ id: events.id });
    return gone.length;
  }
}
