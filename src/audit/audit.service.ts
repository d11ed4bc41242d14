import { and, desc, eq, lt } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { newId } from '../shared/ids.js';
import { auditLog } from './audit.table.js';

/** Actions written to the audit log. */
export type AuditAction =
  | 'api_key.created'
  | 'api_key.revoked'
  | 'login.succeeded'
  | 'login.failed'
  | 'logout'
  | 'permission.denied'
  | 'member.added'
  | 'member.role_changed'
  | 'member.removed'
  | 'invitation.created'
  | 'invitation.revoked'
  | 'invitation.accepted'
  | 'organization.bootstrapped';

/** One audit event as services report it. */
export interface AuditEvent {
  organizationId: string | null;
  actor: { type: 'user' | 'api_key' | 'system' | 'anonymous'; id?: string | null };
  action: AuditAction;
  target?: { type: string; id: string };
  ip?: string;
  requestId?: string;
  metadata?: Record<string, unknown>;
}

/** Appends to and reads the audit log. */
export class AuditService {
  constructor(private readonly db: Db) {}

  /** Appends one event. */
  async record(event: AuditEvent, db: Db = this.db): Promise<void> {
    await db.insert(auditLog).values({
      id: newId('aud'),
      organizationId: event.organizationId,
      actorType: event.actor.type,
      actorId: event.actor.id ?? null,
      action: event.action,
      targetType: event.target?.type ?? null,
      targetId: event.target?.id ?? null,
      ip: event.ip ?? null,
      requestId: event.requestId ?? null,
      metadata: event.metadata ?? {},
    });
  }

  /** Newest first, one organization only. */
  async list(organizationId: string, opts: { limit: number; beforeId?: string; action?: string }) {
    return this.db
      .select()
      .from(auditLog)
      .where(
        and(
          eq(auditLog.organizationId, organizationId),
          opts.beforeId ? lt(auditLog.id, opts.beforeId) : undefined,
          opts.action ? eq(auditLog.action, opts.action) : undefined,
        ),
      )
      .orderBy(desc(auditLog.id))
      .limit(opts.limit);
  }
}
