import type { Db } from '../db/client.js';
import type { AuditService } from '../audit/audit.service.js';
import type { ApiKeysService } from '../auth/api-keys.service.js';
import type { OrganizationsService } from './organizations.service.js';

/** What bootstrap creates; the password and key secret exist only in this value, never again. */
export interface BootstrapResult {
  organization: { id: string; name: string };
  owner: { email: string; password: string | null };
  apiKey: { id: string; secret: string };
}

/** Creates an organization with an owner login and an owner API key, all or nothing. */
export async function bootstrapOrganization(
  deps: { db: Db; organizations: OrganizationsService; apiKeys: ApiKeysService; audit: AuditService },
  input: { organizationName: string; email: string; password?: string },
): Promise<BootstrapResult> {
  return deps.db.transaction(async (tx) => {
    const { organization, userId, email, password } = await deps.organizations.createWithOwner(tx, input);
    const { key, secret } = await deps.apiKeys.createInitial(tx, organization.id, userId, 'Bootstrap key');
    await deps.audit.record(
      { organizationId: organization.id, actor: { type: 'system' }, action: 'organization.bootstrapped', target: { type: 'api_key', id: key.id }, metadata: { email } },
      tx,
    );
    return { organization: { id: organization.id, name: organization.name }, owner: { email, password }, apiKey: { id: key.id, secret } };
  });
}

/** The once-only banner printed after bootstrap. */
export function bootstrapBanner(r: BootstrapResult, publicUrl: string): string {
  const line = '-'.repeat(72);
  return [
    line,
    `Vocelio is set up: organization "${r.organization.name}" (${r.organization.id})`,
    '',
    `  API key (owner):   ${r.apiKey.secret}`,
    `  Dashboard login:   ${r.owner.email}${r.owner.password ? ` / ${r.owner.password}` : ' (existing account, password unchanged)'}`,
    `  API docs:          ${publicUrl}/docs`,
    '',
    'These are shown once and stored only as hashes. Keep them somewhere safe.',
    `Try it:  curl -H "Authorization: Bearer ${r.apiKey.secret}" ${publicUrl}/v1/agents`,
    line,
  ].join('\n');
}
