import { createHash } from 'node:crypto';
import { and, desc, eq, inArray, isNull, lt, or, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { newId, randomToken } from '../shared/ids.js';
import { AppError, forbidden, notFound, unauthorized } from '../shared/errors.js';
import { memberships, organizations, users, ROLES, type Role } from '../organizations/organizations.table.js';
import type { AuditService } from '../audit/audit.service.js';
import { apiKeys } from './auth.table.js';
import { roleAtLeast, type Principal } from './access.js';

/** Every key starts with this, so leaked keys are easy to recognize and scan for. */
export const API_KEY_PREFIX = 'vk_';

/** SHA-256 hex of a secret: keys and session tokens are random, so a fast hash is enough. */
export const sha256 = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** An API key as the API shows it; never includes the secret. */
export interface ApiKeyView {
  id: string;
  object: 'api_key';
  name: string;
  prefix: string;
  role: Role;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  /** Who made the key: a person (in the dashboard), another key, or nobody we know (the CLI, a deleted user). */
  createdBy: KeyCreator | null;
}

/** The maker of a key as the API shows it. */
export type KeyCreator = { type: 'user'; id: string; email: string } | { type: 'api_key'; id: string };

/** Input for creating a key. */
export interface ApiKeyInput {
  name: string;
  role?: Role;
  scopes?: string[];
  expiresAt?: string;
}

/** Why a presented key was not accepted. */
export type KeyRejection = 'unknown' | 'revoked' | 'expired' | 'organization_suspended';

type ApiKeyRow = typeof apiKeys.$inferSelect;

/** Why keys were revoked along with a membership change, for the audit log. */
export interface ChainRevocation {
  actor: Principal['actor'];
  reason: 'member_removed' | 'member_demoted';
  metadata: Record<string, unknown>;
  meta?: { ip?: string; requestId?: string };
}

const toView = (r: ApiKeyRow, creatorEmail: string | null): ApiKeyView => ({
  id: r.id,
  object: 'api_key',
  name: r.name,
  prefix: r.prefix,
  role: r.role,
  scopes: r.scopes,
  createdAt: r.createdAt.toISOString(),
  lastUsedAt: r.lastUsedAt?.toISOString() ?? null,
  expiresAt: r.expiresAt?.toISOString() ?? null,
  revokedAt: r.revokedAt?.toISOString() ?? null,
  createdBy:
    r.createdByUserId && creatorEmail !== null
      ? { type: 'user', id: r.createdByUserId, email: creatorEmail }
      : r.createdByKeyId
        ? { type: 'api_key', id: r.createdByKeyId }
        : null,
});

/**
 * The keys a user made in an organization, and the keys those keys made, down the chain (revoked ones
 * included: a key made before its parent was revoked still works).
 */
function keyChain(organizationId: string, userId: string): SQL {
  return sql`(with recursive chain(id) as (
      select id from api_keys where organization_id = ${organizationId} and created_by_user_id = ${userId}
      union
      select k.id from api_keys k join chain c on k.created_by_key_id = c.id where k.organization_id = ${organizationId}
    ) select id from chain)`;
}

/**
 * Locks what the principal's authority rests on (its key row, or its membership) until the transaction
 * ends, and returns its current role. A removal or demotion running at the same time either finishes first
 * (and this refuses) or waits for this transaction, and then sees whatever it created.
 */
export async function lockPrincipal(tx: Db, principal: Principal): Promise<Role> {
  if (principal.actor.type === 'api_key') {
    const [key] = await tx.select({ revokedAt: apiKeys.revokedAt }).from(apiKeys).where(eq(apiKeys.id, principal.actor.id)).for('share');
    // No row: the operator's CLI, which acts without a key.
    if (key?.revokedAt) throw unauthorized('API key has been revoked');
    return principal.role;
  }
  const [m] = await tx
    .select({ role: memberships.role })
    .from(memberships)
    .where(and(eq(memberships.organizationId, principal.organizationId), eq(memberships.userId, principal.actor.id)))
    .for('share');
  if (!m) throw unauthorized('you are no longer a member of this organization');
  return m.role;
}

// last_used_at is informational; writing it once a minute per key keeps a hot key from costing a write per request.
const LAST_USED_RESOLUTION = sql`interval '60 seconds'`;

/** Creates, lists, revokes and verifies API keys, always within one organization. */
export class ApiKeysService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
  ) {}

  /**
   * Creates a key and returns its secret, the only time it is ever visible. A key can never hold more
   * than its creator: not a higher role, not scopes the creator lacks.
   */
  async create(principal: Principal, input: ApiKeyInput, meta: { ip?: string; requestId?: string } = {}): Promise<{ key: ApiKeyView; secret: string }> {
    const role = input.role ?? 'member';
    if (!roleAtLeast(principal.role, role)) throw forbidden(`you cannot create a key with the ${role} role; you have ${principal.role}`);
    const scopes = input.scopes ?? ['*'];
    if (!principal.scopes.includes('*')) {
      const extra = scopes.filter((s) => !principal.scopes.includes(s) && !principal.scopes.includes(s.replace(/:read$/, '')));
      if (extra.length > 0) throw forbidden(`you cannot grant scopes you do not hold: ${extra.join(', ')}`);
    }
    const expiresAt = input.expiresAt ? new Date(input.expiresAt) : null;
    if (expiresAt && expiresAt.getTime() <= Date.now()) {
      throw new AppError('invalid_request', 'expiresAt must be in the future', 400, { field: 'expiresAt' });
    }
    const secret = `${API_KEY_PREFIX}${randomToken(30)}`;
    return this.db.transaction(async (tx) => {
      const current = await lockPrincipal(tx, principal);
      if (!roleAtLeast(current, role)) throw forbidden(`you cannot create a key with the ${role} role; you have ${current}`);
      const [inserted] = await tx
        .insert(apiKeys)
        .values({
          id: newId('key'),
          organizationId: principal.organizationId,
          name: input.name,
          prefix: secret.slice(0, API_KEY_PREFIX.length + 8),
          keyHash: sha256(secret),
          role,
          scopes: [...new Set(scopes)],
          createdByUserId: principal.actor.type === 'user' ? principal.actor.id : null,
          createdByKeyId: principal.actor.type === 'api_key' ? principal.actor.id : null,
          expiresAt,
        })
        .returning();
      await this.audit.record(
        {
          organizationId: principal.organizationId,
          actor: principal.actor,
          action: 'api_key.created',
          target: { type: 'api_key', id: inserted!.id },
          metadata: { name: input.name, role, scopes },
          ...meta,
        },
        tx,
      );
      const [key] = await this.views(tx, eq(apiKeys.id, inserted!.id));
      return { key: key!, secret };
    });
  }

  /** Creates the first owner key of a new organization (bootstrap); no principal exists yet. */
  async createInitial(db: Db, organizationId: string, userId: string, name: string): Promise<{ key: ApiKeyView; secret: string }> {
    const secret = `${API_KEY_PREFIX}${randomToken(30)}`;
    const [row] = await db
      .insert(apiKeys)
      .values({
        id: newId('key'),
        organizationId,
        name,
        prefix: secret.slice(0, API_KEY_PREFIX.length + 8),
        keyHash: sha256(secret),
        role: 'owner',
        scopes: ['*'],
        createdByUserId: userId,
      })
      .returning();
    const [key] = await this.views(db, eq(apiKeys.id, row!.id));
    return { key: key!, secret };
  }

  /** Newest first. */
  async list(organizationId: string, opts: { limit: number; beforeId?: string; includeRevoked?: boolean }): Promise<ApiKeyView[]> {
    const where = and(
      eq(apiKeys.organizationId, organizationId),
      opts.beforeId ? lt(apiKeys.id, opts.beforeId) : undefined,
      opts.includeRevoked ? undefined : isNull(apiKeys.revokedAt),
    );
    return this.views(this.db, where, opts.limit);
  }

  /** One key of the organization, or 404. */
  async get(organizationId: string, id: string): Promise<ApiKeyView> {
    const [key] = await this.views(this.db, and(eq(apiKeys.id, id), eq(apiKeys.organizationId, organizationId)));
    if (!key) throw notFound('API key', id);
    return key;
  }

  /**
   * Revokes, in the caller's transaction, the keys a member made in the organization and the keys those
   * keys made, down the chain; only those above `aboveRole` when given (a demotion). Records each revocation.
   * Returns every key id of the chain (revoked before or now), so that what those keys created can follow.
   */
  async revokeChainOf(
    tx: Db,
    target: { organizationId: string; userId: string; aboveRole?: Role },
    why: ChainRevocation,
  ): Promise<{ chain: string[]; revoked: string[] }> {
    const roles = target.aboveRole ? ROLES.slice(ROLES.indexOf(target.aboveRole) + 1) : undefined;
    const chain = keyChain(target.organizationId, target.userId);
    const revoked: string[] = [];
    // A key being minted by one of these keys while this runs commits before our update gets its parent's row
    // lock (see lockPrincipal); the next pass, a new statement, sees it. Stop when a pass finds nothing.
    for (;;) {
      const rows = await tx
        .update(apiKeys)
        .set({ revokedAt: sql`now()` })
        .where(and(isNull(apiKeys.revokedAt), sql`${apiKeys.id} in ${chain}`, roles ? inArray(apiKeys.role, roles) : undefined))
        .returning({ id: apiKeys.id });
      if (rows.length === 0) break;
      revoked.push(...rows.map((r) => r.id));
    }
    for (const id of revoked) {
      await this.audit.record(
        {
          organizationId: target.organizationId,
          actor: why.actor,
          action: 'api_key.revoked',
          target: { type: 'api_key', id },
          metadata: { reason: why.reason, ...why.metadata },
          ...why.meta,
        },
        tx,
      );
    }
    const all = await tx.select({ id: apiKeys.id }).from(apiKeys).where(sql`${apiKeys.id} in ${chain}`);
    return { chain: all.map((r) => r.id), revoked };
  }

  /** Keys as the API shows them, each with the email of the person who made it. Newest first. */
  private async views(db: Db, where: SQL | undefined, limit?: number): Promise<ApiKeyView[]> {
    const query = db
      .select({ key: apiKeys, creatorEmail: users.email })
      .from(apiKeys)
      .leftJoin(users, eq(users.id, apiKeys.createdByUserId))
      .where(where)
      .orderBy(desc(apiKeys.id));
    const rows = limit === undefined ? await query : await query.limit(limit);
    return rows.map((r) => toView(r.key, r.creatorEmail));
  }

  /** Revokes at once: the next request with the key is refused. Revoking twice is harmless. */
  async revoke(principal: Principal, id: string, meta: { ip?: string; requestId?: string } = {}): Promise<ApiKeyView> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .update(apiKeys)
        .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
        .where(and(eq(apiKeys.id, id), eq(apiKeys.organizationId, principal.organizationId)))
        .returning();
      if (!row) throw notFound('API key', id);
      if (!roleAtLeast(principal.role, row.role)) {
        throw forbidden(`you cannot revoke a key with the ${row.role} role; you have ${principal.role}`);
      }
      await this.audit.record(
        { organizationId: principal.organizationId, actor: principal.actor, action: 'api_key.revoked', target: { type: 'api_key', id }, ...meta },
        tx,
      );
      const [key] = await this.views(tx, eq(apiKeys.id, row.id));
      return key!;
    });
  }

  /** Resolves a presented secret to a principal, or says why it cannot be used. Reads the database every time, so revocation is immediate. */
  async authenticate(secret: string): Promise<{ ok: true; principal: Principal } | { ok: false; reason: KeyRejection }> {
    if (!secret.startsWith(API_KEY_PREFIX) || secret.length > 200) return { ok: false, reason: 'unknown' };
    const [row] = await this.db
      .select({ key: apiKeys, orgStatus: organizations.status })
      .from(apiKeys)
      .innerJoin(organizations, eq(organizations.id, apiKeys.organizationId))
      .where(eq(apiKeys.keyHash, sha256(secret)));
    if (!row) return { ok: false, reason: 'unknown' };
    const { key } = row;
    if (key.revokedAt) return { ok: false, reason: 'revoked' };
    if (key.expiresAt && key.expiresAt.getTime() <= Date.now()) return { ok: false, reason: 'expired' };
    if (row.orgStatus !== 'active') return { ok: false, reason: 'organization_suspended' };
    if (!key.lastUsedAt || Date.now() - key.lastUsedAt.getTime() > 60_000) {
      await this.db
        .update(apiKeys)
        .set({ lastUsedAt: sql`now()` })
        .where(and(eq(apiKeys.id, key.id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, sql`now() - ${LAST_USED_RESOLUTION}`))));
    }
    return {
      ok: true,
      principal: { organizationId: key.organizationId, role: key.role, scopes: key.scopes, actor: { type: 'api_key', id: key.id } },
    };
  }
}
