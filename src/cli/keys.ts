import type { Config } from '../config.js';
import { openDatabase } from '../db/client.js';
import type { Principal } from '../auth/access.js';
import { ROLES, type Role } from '../organizations/organizations.table.js';
import { idPattern } from '../shared/ids.js';
import { parseCommandArgs, UsageError } from './args.js';
import { cliServices } from './services.js';

/** `vocelio keys list|create|revoke`: API keys from the command line, acting as the system owner of an organization. */
export async function runKeys(config: Config, args: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(args, {
    org: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string' },
    scope: { type: 'string', multiple: true },
  });
  const [action, keyId] = positionals;
  const org = values.org;
  if (!org || !new RegExp(idPattern('org')).test(org)) throw new UsageError('--org <org_id> is required (the org_... id printed by bootstrap)');
  const role = (values.role ?? 'member') as Role;
  if (!ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);

  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const { apiKeys, organizations } = cliServices(database.db);
    await organizations.get(org);
    // The operator at the console acts with full rights inside the named organization.
    const principal: Principal = { organizationId: org, role: 'owner', scopes: ['*'], actor: { type: 'api_key', id: 'cli' } };
    switch (action) {
      case 'list': {
        const keys = await apiKeys.list(org, { limit: 100, includeRevoked: true });
        for (const k of keys) {
          console.log([k.id, k.prefix.padEnd(12), k.role.padEnd(7), k.revokedAt ? 'revoked' : 'active ', k.lastUsedAt ?? 'never used', k.name].join('  '));
        }
        if (keys.length === 0) console.log('no keys');
        return;
      }
      case 'create': {
        if (!values.name) throw new UsageError('keys create needs --name');
        const { key, secret } = await apiKeys.create(principal, { name: values.name, role, scopes: values.scope });
        console.log(`created ${key.id} (${key.role}, scopes ${key.scopes.join(',')})\n${secret}\nThis secret is shown once.`);
        return;
      }
      case 'revoke': {
        if (!keyId) throw new UsageError('keys revoke needs a key id');
        const key = await apiKeys.revoke(principal, keyId);
        console.log(`revoked ${key.id} at ${key.revokedAt}`);
        return;
      }
      default:
        throw new UsageError('keys needs list, create or revoke');
    }
  } finally {
    await database.close();
  }
}
