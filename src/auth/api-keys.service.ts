import { createHash } from 'node:crypto';
import { and, desc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { newId, randomToken } from '../shared/ids.js';
import { AppError, forbidden, notFound } from '../shared/errors.js';
import type { Role } from '../organizations/organizations.table.js';
import { organizations } from '../organizations/organizations.table.js';
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
}

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

const toView = (r: ApiKeyRow): ApiKeyView => ({
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
});

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
    const row = await this.db.transaction(async (tx) => {
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
      return inserted!;
    });
    return { key: toView(row), secret };
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
    return { key: toView(row!), secret };
  }

  /** Newest first. */
  async list(organizationId: string, opts: { limit: number; beforeId?: string; includeRevoked?: boolean }): Promise<ApiKeyView[]> {
    const rows = await this.db
      .select()
      .from(apiKeys)
      .where(
        and(
          eq(apiKeys.organizationId, organizationId),
          opts.beforeId ? lt(apiKeys.id, opts.beforeId) : undefined,
          opts.includeRevoked ? undefined : isNull(apiKeys.revokedAt),
        ),
      )
      .orderBy(desc(apiKeys.id))
      .limit(opts.limit);
    return rows.map(toView);
  }

  /** One key of the organization, or 404. */
  async get(organizationId: string, id: string): Promise<ApiKeyView> {
    const [row] = await this.db.select().from(apiKeys).where(and(eq(apiKeys.id, id), eq(apiKeys.organizationId, organizationId)));
    if (!row) throw notFound('API key', id);
    return toView(row);
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
      return toView(row);
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
