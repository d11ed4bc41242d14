import { pgTable, text, timestamp, jsonb, index, uniqueIndex } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { organizations } from '../organizations/organizations.table.js';
import { agents } from '../agents/agents.table.js';

import type { NumberCapabilities } from '../telephony/provider/telephony-provider.js';

/**
 * Phone numbers an organization owns at its carrier, and the agent that answers each. A released number
 * keeps its row (calls point at it) with `released_at` set; a live number belongs to one organization only.
 */
export const phoneNumbers = pgTable(
  'phone_numbers',
  {
    id: text('id').primaryKey(),
    organizationId: text('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    provider: text('provider').notNull().default('twilio'),
    providerSid: text('provider_sid').notNull(),
    /** E.164, e.g. +14155550123. */
    phoneNumber: text('phone_number').notNull(),
    friendlyName: text('friendly_name').notNull().default(''),
    agentId: text('agent_id').references(() => agents.id),
    capabilities: jsonb('capabilities').$type<NumberCapabilities>().notNull().default({ voice: true, sms: false, mms: false, fax: false }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    releasedAt: timestamp('released_at', { withTimezone: true }),
  },
  (t) => [
    index('phone_numbers_org_idx').on(t.organizationId, t.id),
    uniqueIndex('phone_numbers_live_number_key').on(t.phoneNumber).where(sql`${t.releasedAt} is null`),
    uniqueIndex('phone_numbers_live_sid_key').on(t.provider, t.providerSid).where(sql`${t.releasedAt} is null`),
  ],
);

export type PhoneNumberRow = typeof phoneNumbers.$inferSelect;
