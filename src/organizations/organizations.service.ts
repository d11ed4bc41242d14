import { and, asc, count, eq, gt } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { newId, randomToken } from '../shared/ids.js';
import { conflict, forbidden, notFound } from '../shared/errors.js';
import { hashPassword } from '../auth/passwords.js';
import type { AuditService } from '../audit/audit.service.js';
import type { ApiKeysService } from '../auth/api-keys.service.js';
import type { Principal } from '../auth/access.js';
import type { InvitationsService } from './invitations.service.js';
import { assertMayGrant, type Meta } from './grants.js';
import { memberships, organizations, users, ROLES, type Role } from './organizations.table.js';

/** A member of an organization as the API shows it. */
export interface MemberView {
  id: string;
  object: 'member';
  userId: string;
  email: string;
  name: string;
  role: Role;
  createdAt: string;
}

/** The organization as the API shows it. */
export interface OrganizationView {
  id: string;
  object: 'organization';
  name: string;
  status: 'active' | 'suspended';
  createdAt: string;
}

/** Lower-cased and trimmed, so that logins and uniqueness ignore case. */
export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

/** Organizations, users and memberships. People join through invitations (`InvitationsService`). */
export class OrganizationsService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly apiKeys: ApiKeysService,
    private readonly invitations: InvitationsService,
  ) {}

  /** True when no organization exists yet (first start). */
  async isEmpty(): Promise<boolean> {
    const [row] = await this.db.select({ n: count() }).from(organizations);
    return (row?.n ?? 0) === 0;
  }

  /**
   * Creates an organization and its owner. A new user gets `password` (or a generated one, returned so it
   * can be shown once); an existing user keeps theirs and just becomes owner of the new organization.
   */
  async createWithOwner(
    tx: Db,
    input: { organizationName: string; email: string; password?: string },
  ): Promise<{ organization: OrganizationView; userId: string; email: string; password: string | null }> {
    const email = normalizeEmail(input.email);
    const orgId = newId('org');
    const [org] = await tx.insert(organizations).values({ id: orgId, name: input.organizationName }).returning();
    let [user] = await tx.select().from(users).where(eq(users.email, email));
    let password: string | null = null;
    if (!user) {
      password = input.password ?? randomToken(12);
      [user] = await tx.insert(users).values({ id: newId('usr'), email, passwordHash: await hashPassword(password) }).returning();
    }
    await tx.insert(memberships).values({ id: newId('mem'), organizationId: orgId, userId: user!.id, role: 'owner' });
    return { organization: toOrgView(org!), userId: user!.id, email, password };
  }

  /** The caller's organization. */
  async get(organizationId: string): Promise<OrganizationView> {
    const [org] = await this.db.select().from(organizations).where(eq(organizations.id, organizationId));
    if (!org) throw notFound('organization', organizationId);
    return toOrgView(org);
  }

  /** Memberships of one organization, oldest first. */
  async listMembers(organizationId: string, opts: { limit: number; afterId?: string }): Promise<MemberView[]> {
    const rows = await this.db
      .select({ m: memberships, u: users })
      .from(memberships)
      .innerJoin(users, eq(users.id, memberships.userId))
      .where(and(eq(memberships.organizationId, organizationId), opts.afterId ? gt(memberships.id, opts.afterId) : undefined))
      .orderBy(asc(memberships.id))
      .limit(opts.limit);
    return rows.map(({ m, u }) => toMemberView(m, u));
  }

  /**
   * Changes a member's role; never leaves the organization without an owner, never lets a non-owner touch
   * owners. A demotion revokes the member's keys (and invitations) above the new role.
   */
  async changeRole(principal: Principal, memberId: string, role: Role, meta: Meta = {}): Promise<MemberView> {
    await assertMayGrant(this.audit, principal, role, 'member.role_change', meta);
    return this.db.transaction(async (tx) => {
      const { m, u } = await this.lockMember(tx, principal.organizationId, memberId);
      if (m.role === 'owner' && principal.role !== 'owner') throw forbidden('only an owner can take the owner role');
      if (m.role === 'owner' && role !== 'owner') await this.assertAnotherOwner(tx, principal.organizationId);
      const [updated] = await tx.update(memberships).set({ role }).where(eq(memberships.id, m.id)).returning();
      await this.audit.record(
        { organizationId: principal.organizationId, actor: principal.actor, action: 'member.role_changed', target: { type: 'member', id: m.id }, metadata: { from: m.role, to: role }, ...meta },
        tx,
      );
      if (ROLES.indexOf(role) < ROLES.indexOf(m.role)) {
        await this.revokeWhatTheyGranted(tx, principal, m, { reason: 'member_demoted', aboveRole: role, metadata: { from: m.role, to: role } }, meta);
      }
      return toMemberView(updated!, u);
    });
  }

  /** Removes a member, revoking the keys they made (down the chain) and the invitations they sent; the last owner cannot be removed. */
  async removeMember(principal: Principal, memberId: string, meta: Meta = {}): Promise<void> {
    await this.db.transaction(async (tx) => {
      const { m } = await this.lockMember(tx, principal.organizationId, memberId);
      if (m.role === 'owner') {
        if (principal.role !== 'owner') throw forbidden('only an owner can remove an owner');
        await this.assertAnotherOwner(tx, principal.organizationId);
      }
      await tx.delete(memberships).where(eq(memberships.id, m.id));
      await this.audit.record(
        { organizationId: principal.organizationId, actor: principal.actor, action: 'member.removed', target: { type: 'member', id: m.id }, metadata: { userId: m.userId, role: m.role }, ...meta },
        tx,
      );
      await this.revokeWhatTheyGranted(tx, principal, m, { reason: 'member_removed', metadata: {} }, meta);
    });
  }

  /** Revokes, in `tx`, a member's keys (down the chain) and their open invitations, above `aboveRole` when given. */
  private async revokeWhatTheyGranted(
    tx: Db,
    principal: Principal,
    m: typeof memberships.$inferSelect,
    why: { reason: 'member_removed' | 'member_demoted'; aboveRole?: Role; metadata: Record<string, unknown> },
    meta: Meta,
  ): Promise<void> {
    const target = { organizationId: m.organizationId, userId: m.userId, aboveRole: why.aboveRole };
    const audit = { actor: principal.actor, reason: why.reason, metadata: { memberId: m.id, userId: m.userId, ...why.metadata }, meta };
    const { chain } = await this.apiKeys.revokeChainOf(tx, target, audit);
    await this.invitations.revokeSentBy(tx, { ...target, keyIds: chain }, audit);
  }

  private async lockMember(tx: Db, organizationId: string, memberId: string) {
    const [row] = await tx
      .select({ m: memberships, u: users })
      .from(memberships)
      .innerJoin(users, eq(users.id, memberships.userId))
      .where(and(eq(memberships.id, memberId), eq(memberships.organizationId, organizationId)))
      .for('update', { of: memberships });
    if (!row) throw notFound('member', memberId);
    return row;
  }

  private async assertAnotherOwner(tx: Db, organizationId: string): Promise<void> {
    // Lock every owner row so two concurrent demotions cannot both see "another owner".
    const owners = await tx
      .select({ id: memberships.id })
      .from(memberships)
      .where(and(eq(memberships.organizationId, organizationId), eq(memberships.role, 'owner')))
      .for('update');
    if (owners.length <= 1) throw conflict('an organization must keep at least one owner');
  }
}

function toOrgView(o: typeof organizations.$inferSelect): OrganizationView {
  return { id: o.id, object: 'organization', name: o.name, status: o.status, createdAt: o.createdAt.toISOString() };
}

function toMemberView(m: typeof memberships.$inferSelect, u: typeof users.$inferSelect): MemberView {
  return { id: m.id, object: 'member', userId: u.id, email: u.email, name: u.name, role: m.role, createdAt: m.createdAt.toISOString() };
}
