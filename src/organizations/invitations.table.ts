import { pgTable, text, timestamp, integer, index, uniqueIndex, check } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { organizations, users, ROLES } from './organizations.table.js';

/**
 * An invitation to join an organization with a role. Only the SHA-256 of its one-time token is stored.
 * Open while accepted_at and revoked_at are null, expires_at is ahead and failed_attempts is under the limit.
 */
export const invitations = pgTable(
  'invitations',
  {
    id: text('id').primaryKey(),
    organizationId: text('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    // Stored lower-cased, like users.email.
    email: text('email').notNull(),
    role: text('role', { enum: ROLES }).notNull(),
    tokenHash: text('token_hash').notNull(),
    invitedByUserId: text('invited_by_user_id').references(() => users.id, { onDelete: 'set null' }),
    invitedByKeyId: text('invited_by_key_id'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    acceptedAt: timestamp('accepted_at', { withTimezone: true }),
    acceptedByUserId: text('accepted_by_user_id').references(() => users.id, { onDelete: 'set null' }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    // Wrong passwords given with this token; at the limit the invitation is void.
    failedAttempts: integer('failed_attempts').notNull().default(0),
  },
  (t) => [
    uniqueIndex('invitations_token_hash_key').on(t.tokenHash),
    index('invitations_org_idx').on(t.organizationId, t.id),
    index('invitations_org_email_idx').on(t.organizationId, t.email),
    check('invitations_role_check', sql`${t.role} in ('viewer', 'member', 'admin', 'owner')`),
  ],
);
