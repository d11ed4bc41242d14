import { pgTable, text, timestamp, integer } from 'drizzle-orm/pg-core';

/**
 * One row per running `serve` process: its lease. A node heartbeats while alive; a call whose media node's
 * heartbeat is older than the lease is a call nobody holds any more (the process died), and is ended.
 */
export const serveNodes = pgTable('serve_nodes', {
  id: text('id').primaryKey(),
  hostname: text('hostname').notNull(),
  pid: integer('pid').notNull(),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  heartbeatAt: timestamp('heartbeat_at', { withTimezone: true }).notNull().defaultNow(),
});

export type ServeNodeRow = typeof serveNodes.$inferSelect;
