import { pgTable, text, timestamp, index, uniqueIndex, jsonb, bigint, integer, primaryKey } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { organizations } from '../organizations/organizations.table.js';

/**
 * The outbox: durable events, written in the same transaction as the change they report, so an event exists
 * exactly when its change committed. `seq` is stamped after commit, in commit order (EventsService.stamp),
 * which is what replay and consumers read by; `dispatched_at` is set once every consumer is done with it.
 */
export const events = pgTable(
  'events',
  {
    id: text('id').primaryKey(),
    organizationId: text('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    /** What the event is about: the call id for `call.*`. */
    subject: text('subject').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    seq: bigint('seq', { mode: 'number' }),
    dispatchedAt: timestamp('dispatched_at', { withTimezone: true }),
  },
  (t) => [
    // Also what max(seq) reads when stamping the next batch.
    uniqueIndex('events_seq_key').on(t.seq),
    // "New since": the stamper's scan and the dispatcher's sweep stay small however long the table grows.
    index('events_unstamped_idx').on(t.id).where(sql`${t.seq} is null`),
    index('events_undispatched_idx').on(t.seq).where(sql`${t.dispatchedAt} is null`),
    // Replay for one organization (`Last-Event-ID`).
    index('events_org_seq_idx').on(t.organizationId, t.seq),
  ],
);

export type EventRow = typeof events.$inferSelect;

/** How a consumer finished with an event: handled, or given up on after its last attempt. */
export const DELIVERY_OUTCOMES = ['handled', 'dead'] as const;
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

/**
 * One row per (event, consumer) that is done: the idempotency record. A transactional consumer's row is
 * written in the same transaction as its work, so an event is handled once however often it is delivered.
 */
export const eventDeliveries = pgTable(
  'event_deliveries',
  {
    eventId: text('event_id')
      .notNull()
      .references(() => events.id, { onDelete: 'cascade' }),
    consumer: text('consumer').notNull(),
    outcome: text('outcome', { enum: DELIVERY_OUTCOMES }).notNull(),
    attempts: integer('attempts').notNull(),
    /** Why the last attempt failed, for dead deliveries. */
    error: text('error'),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.eventId, t.consumer] })],
);
