import { pgTable, text, timestamp, index, uniqueIndex, doublePrecision } from 'drizzle-orm/pg-core';
import { organizations } from '../organizations/organizations.table.js';
import { calls } from '../calls/calls.table.js';

/**
 * What is metered: provider seconds, tokens and characters (pricing applies later, in billing). The
 * `_estimated` token meters hold what we counted ourselves because the provider reported nothing (a stream
 * cut by barge-in): the provider still bills it, at the same price.
 */
export const USAGE_METERS = ['stt_seconds', 'llm_input_tokens', 'llm_output_tokens', 'llm_input_tokens_estimated', 'llm_output_tokens_estimated', 'tts_characters'] as const;
export type UsageMeter = (typeof USAGE_METERS)[number];

/**
 * Usage of one call, one row per meter, provider and model. Written while the call runs (added to, never
 * replaced), so a crash loses at most the usage since the last flush.
 */
export const usageRecords = pgTable(
  'usage_records',
  {
    id: text('id').primaryKey(),
    organizationId: text('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    callId: text('call_id').references(() => calls.id, { onDelete: 'set null' }),
    meter: text('meter', { enum: USAGE_METERS }).notNull(),
    provider: text('provider').notNull(),
    model: text('model').notNull().default(''),
    quantity: doublePrecision('quantity').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('usage_records_call_meter_key').on(t.callId, t.meter, t.provider, t.model), index('usage_records_org_idx').on(t.organizationId, t.createdAt)],
);

export type UsageRecordRow = typeof usageRecords.$inferSelect;
