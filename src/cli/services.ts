import type { Db } from '../db/client.js';
import { AuditService } from '../audit/audit.service.js';
import { ApiKeysService } from '../auth/api-keys.service.js';
import { OrganizationsService } from '../organizations/organizations.service.js';

/** The services CLI commands need, built straight on a database (no HTTP app). */
export function cliServices(db: Db) {
  const audit = new AuditService(db);
  return { db, audit, apiKeys: new ApiKeysService(db, audit), organizations: new OrganizationsService(db, audit) };
}
