import { and, asc, eq, gt, isNull, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { newId } from '../shared/ids.js';
import { events, type EventRow } from './events.table.js';
import type { NewEvent, StoredEvent } from './event-types.js';

/** The NOTIFY channel that wakes event feeds: sent when an event commits and when a batch is stamped. */
export const EVENTS_CHANNEL = 'vocelio_events';

// Any constant: it only has to be the same on every node so that one stamper runs at a time.
const STAMP_LOCK_KEY = 7_240_113_002;

/** What one stamping pass did: `busy` when another node held the stamp lock (it stamps instead). */
export interface StampResult {
  stamped: number;
  busy: boolean;
}

/** Narrows one of the outbox's own rows (written only through `record`) to the event union. */
export function toStoredEvent(row: EventRow): StoredEvent {
  if (row.seq === null) throw new Error(`event ${row.id} has not been stamped yet`);
  return {
    id: row.id,
    seq: row.seq,
    organizationId: row.organizationId,
    type: row.type,
    subject: row.subject,
    payload: row.payload,
    createdAt: row.createdAt.toISOString(),
  } as StoredEvent;
}

/**
 * Durable events: producers `record` them inside their own transaction; readers (the live stream, the
 * dispatcher) read them in commit order once `stamp` has given them a sequence number.
 */
export class EventsService {
  constructor(private readonly db: Db) {}

  /**
   * Writes an event in the caller's transaction (or as its own statement): it exists exactly when the change
   * it reports committed, and the NOTIFY that wakes feeds is delivered on commit too, never on rollback.
   */
  async record(tx: Db | Tx, event: NewEvent): Promise<string> {
    const id = newId('evt');
    // One round trip: the insert and the wake-up notification in a single statement.
    await tx.execute(sql`
      with inserted as (
        insert into ${events} (id, organization_id, type, subject, payload)
        values (${id}, ${event.organizationId}, ${event.type}, ${event.subject}, ${JSON.stringify(event.payload)}::jsonb)
        returning id
      )
      select pg_notify(${EVENTS_CHANNEL}, '') from inserted`);
    return id;
  }

  /**
   * Gives committed, unstamped events their sequence numbers, oldest id first, under a transaction-scoped
   * advisory lock. Stamping runs after the producers committed and one stamper at a time, so sequence order
   * is commit order: a reader that has seen seq N has seen every event below N (ids alone cannot promise
   * that: a transaction may commit after a later one). Another node holding the lock means skip, not wait.
   */
  async stamp(limit = 500): Promise<StampResult> {
    return this.db.transaction(async (tx) => {
      const [lock] = rowsOf<{ ok: boolean }>(await tx.execute(sql`select pg_try_advisory_xact_lock(${STAMP_LOCK_KEY}) as ok`));
      if (!lock?.ok) return { stamped: 0, busy: true };
      const batch = tx.$with('batch').as(
        tx
          .select({
            id: events.id,
            next: sql<number>`(select coalesce(max(seq), 0) from ${events}) + row_number() over (order by ${events.id})`.as('next_seq'),
          })
          .from(events)
          .where(isNull(events.seq))
          .orderBy(asc(events.id))
          .limit(limit),
      );
      const stamped = await tx.with(batch).update(events).set({ seq: sql`${batch.next}` }).from(batch).where(eq(events.id, batch.id)).returning({ id: events.id });
      if (stamped.length > 0) await tx.execute(sql`select pg_notify(${EVENTS_CHANNEL}, '')`);
      return { stamped: stamped.length, busy: false };
    });
  }

  /** The highest stamped sequence number (0 when there is none). */
  async maxSeq(): Promise<number> {
    const [row] = await this.db.select({ max: sql<number | null>`max(${events.seq})` }).from(events);
    return Number(row?.max ?? 0);
  }

  /** Stamped events after `seq` in commit order: all of them (the feed), or one organization's (replay), optionally about one subject. */
  async after(seq: number, limit: number, scope?: { organizationId: string; subject?: string }): Promise<StoredEvent[]> {
    const rows = await this.db
      .select()
      .from(events)
      .where(
        and(
          gt(events.seq, seq),
          scope ? eq(events.organizationId, scope.organizationId) : undefined,
          scope?.subject !== undefined ? eq(events.subject, scope.subject) : undefined,
        ),
      )
      .orderBy(asc(events.seq))
      .limit(limit);
    return rows.map(toStoredEvent);
  }

  /** The sequence number of one of the organization's stamped events, or null (unknown, purged, another tenant's). */
  async seqOf(organizationId: string, id: string): Promise<number | null> {
    const [row] = await this.db.select({ seq: events.seq }).from(events).where(and(eq(events.id, id), eq(events.organizationId, organizationId)));
    return row?.seq ?? null;
  }

  /** One stamped event by id, or null (unknown, purged, or not stamped yet). */
  async byId(id: string): Promise<StoredEvent | null> {
    const [row] = await this.db.select().from(events).where(eq(events.id, id));
    return row && row.seq !== null ? toStoredEvent(row) : null;
  }
}

/** The rows of a raw `execute`, whose result type drizzle leaves to the driver (both drivers return `rows`). */
function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}
