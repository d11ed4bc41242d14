import type { Db } from '../db/client.js';
import { AuditService } from '../audit/audit.service.js';
import { ApiKeysService } from '../auth/api-keys.service.js';
import { OrganizationsService } from '../organizations/organizations.service.js';
import { InvitationsService } from '../organizations/invitations.service.js';

/** The services CLI commands need, built straight on a database (no HTTP app). */
export function cliServices(db: Db) {
  const audit = new AuditService(db);
  const apiKeys = new ApiKeysService(db, audit);
  return { db, audit, apiKeys, organizations: new OrganizationsService(db, audit, apiKeys, new InvitationsService(db, audit)) };
}
