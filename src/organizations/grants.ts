import { forbidden } from '../shared/errors.js';
import type { AuditService } from '../audit/audit.service.js';
import { grantDenyReason, type Principal } from '../auth/access.js';
import type { Role } from './organizations.table.js';

/** Request facts the audit log keeps with an event. */
export type Meta = { ip?: string; requestId?: string };

/**
 * Refuses, with a 403 saying what is missing, a principal that may not make someone a member with `role`
 * (see `grantDenyReason`); the refusal is audited as `permission.denied`, as the /v1 guard audits its own.
 * Call it outside any transaction, or the audit row would roll back with the refused change.
 */
export async function assertMayGrant(audit: AuditService, principal: Principal, role: Role, operation: string, meta: Meta): Promise<void> {
  const reason = grantDenyReason(principal, role);
  if (!reason) return;
  await audit.record({
    organizationId: principal.organizationId,
    actor: principal.actor,
    action: 'permission.denied',
    metadata: { operation, grants: role, role: principal.role, scopes: [...principal.scopes] },
    ...meta,
  });
  throw forbidden(reason);
}
