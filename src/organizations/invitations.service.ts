import { and, desc, eq, gt, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { newId, randomToken } from '../shared/ids.js';
import { AppError, conflict, forbidden, notFound } from '../shared/errors.js';
import type { AuditService } from '../audit/audit.service.js';
import { lockPrincipal, sha256 } from '../auth/api-keys.service.js';
import { roleAtLeast, type Principal } from '../auth/access.js';
import { dummyPasswordHash, hashPassword, verifyPassword } from '../auth/passwords.js';
import { memberships, organizations, users, ROLES, type Role } from './organizations.table.js';
import { invitations } from './invitations.table.js';
import { assertMayGrant, type Meta } from './grants.js';
import { normalizeEmail } from './organizations.service.js';

/** How long an invitation can be accepted. */
export const INVITATION_TTL_MS = 7 * 24 * 3_600_000;
/** Wrong passwords one invitation tolerates before it is void. */
export const MAX_FAILED_ACCEPTS = 5;
/** The shortest password a new account may have. */
export const MIN_PASSWORD_LENGTH = 12;

/** Where an invitation stands. */
export type InvitationStatus = 'pending' | 'accepted' | 'revoked' | 'void' | 'expired';

/** An invitation as the API shows it; never includes the token. */
export interface InvitationView {
  id: string;
  object: 'invitation';
  email: string;
  role: Role;
  status: InvitationStatus;
  invitedBy: { type: 'user' | 'api_key'; id: string } | null;
  createdAt: string;
  expiresAt: string;
  acceptedAt: string | null;
  revokedAt: string | null;
}

/** What an invitation link shows before it is accepted: nothing about whether the email has an account. */
export interface InvitationPreview {
  organization: { name: string };
  email: string;
  role: Role;
  expiresAt: string;
}

/** Who joined, and where, once an invitation was accepted. */
export interface Accepted {
  user: { id: string; email: string; name: string };
  organization: { id: string; name: string };
  role: Role;
  memberId: string;
}

type Row = typeof invitations.$inferSelect;

const isUniqueViolation = (err: unknown): boolean => {
  for (let e = err; e instanceof Error; e = e.cause) if ((e as { code?: unknown }).code === '23505') return true;
  return false;
};

/**
 * Invitations: the only way into an organization besides bootstrap. An admin invites an email; whoever
 * holds the one-time token accepts, proving they are the person by creating the account's password or,
 * for an existing account, by giving it.
 */
export class InvitationsService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Invites `email` with `role`, and returns the token (the only time it exists outside a hash). The answer
   * is the same whether the email has an account or not; only this organization's own data can refuse it.
   */
  async create(principal: Principal, input: { email: string; role: Role }, meta: Meta = {}): Promise<{ invitation: InvitationView; token: string }> {
    await assertMayGrant(this.audit, principal, input.role, 'invitation.create', meta);
    const email = normalizeEmail(input.email);
    const token = randomToken(32);
    return this.db.transaction(async (tx) => {
      const current = await lockPrincipal(tx, principal);
      if (!roleAtLeast(current, input.role)) throw forbidden(`granting the ${input.role} role needs the ${input.role} role or higher; you have ${current}`);
      // One invitation at a time per organization, so two concurrent invitations of one email cannot both pass the checks.
      await tx.select({ id: organizations.id }).from(organizations).where(eq(organizations.id, principal.organizationId)).for('update');
      const [member] = await tx
        .select({ id: memberships.id })
        .from(memberships)
        .innerJoin(users, eq(users.id, memberships.userId))
        .where(and(eq(memberships.organizationId, principal.organizationId), eq(users.email, email)));
      if (member) throw conflict(`${email} is already a member`);
      const [open] = await tx.select({ id: invitations.id }).from(invitations).where(and(eq(invitations.organizationId, principal.organizationId), eq(invitations.email, email), this.isOpen()));
      if (open) throw conflict(`${email} already has a pending invitation (${open.id}); revoke it to invite again`);
      const [row] = await tx
        .insert(invitations)
        .values({
          id: newId('inv'),
          organizationId: principal.organizationId,
          email,
          role: input.role,
          tokenHash: sha256(token),
          invitedByUserId: principal.actor.type === 'user' ? principal.actor.id : null,
          invitedByKeyId: principal.actor.type === 'api_key' ? principal.actor.id : null,
          expiresAt: new Date(this.now().getTime() + INVITATION_TTL_MS),
        })
        .returning();
      await this.audit.record(
        { organizationId: principal.organizationId, actor: principal.actor, action: 'invitation.created', target: { type: 'invitation', id: row!.id }, metadata: { email, role: input.role }, ...meta },
        tx,
      );
      return { invitation: this.toView(row!), token };
    });
  }

  /** Pending invitations of one organization, newest first. */
  async listPending(organizationId: string, opts: { limit: number; beforeId?: string }): Promise<InvitationView[]> {
    const rows = await this.db
      .select()
      .from(invitations)
      .where(and(eq(invitations.organizationId, organizationId), this.isOpen(), opts.beforeId ? lt(invitations.id, opts.beforeId) : undefined))
      .orderBy(desc(invitations.id))
      .limit(opts.limit);
    return rows.map((r) => this.toView(r));
  }

  /** Revokes a pending invitation; revoking twice is harmless, revoking an accepted one is a 409. */
  async revoke(principal: Principal, id: string, meta: Meta = {}): Promise<InvitationView> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.select().from(invitations).where(and(eq(invitations.id, id), eq(invitations.organizationId, principal.organizationId))).for('update');
      if (!row) throw notFound('invitation', id);
      if (!roleAtLeast(principal.role, row.role)) throw forbidden(`you cannot revoke an invitation for the ${row.role} role; you have ${principal.role}`);
      if (row.acceptedAt) throw conflict(`invitation ${id} was already accepted; remove the member instead`);
      if (row.revokedAt) return this.toView(row);
      const [updated] = await tx.update(invitations).set({ revokedAt: this.now() }).where(eq(invitations.id, id)).returning();
      await this.audit.record(
        { organizationId: principal.organizationId, actor: principal.actor, action: 'invitation.revoked', target: { type: 'invitation', id }, metadata: { email: row.email, role: row.role }, ...meta },
        tx,
      );
      return this.toView(updated!);
    });
  }

  /**
   * Revokes, in the caller's transaction, the open invitations a member sent (in person or through `keyIds`,
   * their keys): all of them on removal, those above `aboveRole` on a demotion. Otherwise a removed admin
   * could still walk back in through an invitation they sent themselves.
   */
  async revokeSentBy(
    tx: Db,
    sender: { organizationId: string; userId: string; keyIds: string[]; aboveRole?: Role },
    why: { actor: Principal['actor']; reason: 'member_removed' | 'member_demoted'; metadata: Record<string, unknown>; meta?: Meta },
  ): Promise<string[]> {
    const roles = sender.aboveRole ? ROLES.slice(ROLES.indexOf(sender.aboveRole) + 1) : undefined;
    const sentBy = or(eq(invitations.invitedByUserId, sender.userId), sender.keyIds.length > 0 ? inArray(invitations.invitedByKeyId, sender.keyIds) : undefined);
    const rows = await tx
      .update(invitations)
      .set({ revokedAt: this.now() })
      .where(and(eq(invitations.organizationId, sender.organizationId), sentBy, isNull(invitations.acceptedAt), isNull(invitations.revokedAt), roles ? inArray(invitations.role, roles) : undefined))
      .returning({ id: invitations.id });
    for (const { id } of rows) {
      await this.audit.record(
        { organizationId: sender.organizationId, actor: why.actor, action: 'invitation.revoked', target: { type: 'invitation', id }, metadata: { reason: why.reason, ...why.metadata }, ...why.meta },
        tx,
      );
    }
    return rows.map((r) => r.id);
  }

  /** What the link holder sees before accepting. */
  async preview(token: string): Promise<InvitationPreview> {
    const { row, organization } = await this.findOpen(this.db, token);
    return { organization: { name: organization.name }, email: row.email, role: row.role, expiresAt: row.expiresAt.toISOString() };
  }

  /**
   * Accepts an invitation. A new email gets an account with `password`; an existing account must give its
   * own password, so holding the link is not enough to join someone else to an organization. Both kinds of
   * failure answer alike and count against the invitation.
   */
  async accept(input: { token: string; password: string; name?: string }, meta: Meta = {}): Promise<Accepted> {
    const { row } = await this.findOpen(this.db, input.token);
    const [user] = await this.db.select().from(users).where(eq(users.email, row.email));
    let passwordHash: string | null = null;
    let ok: boolean;
    if (user) {
      ok = await verifyPassword(input.password, user.passwordHash);
    } else if (input.password.length < MIN_PASSWORD_LENGTH) {
      // As slow as checking a password, so the answer's timing does not tell which case this was.
      await verifyPassword(input.password, await dummyPasswordHash());
      ok = false;
    } else {
      passwordHash = await hashPassword(input.password);
      ok = true;
    }
    if (!ok) return this.failAttempt(row, user ?? null, meta);

    return this.db.transaction(async (tx) => {
      // Again under a lock: the invitation may have been used, revoked or voided while the password was checked.
      const { row: inv, organization } = await this.findOpen(tx, input.token, true);
      let person = user;
      if (!person) {
        try {
          [person] = await tx.insert(users).values({ id: newId('usr'), email: inv.email, name: input.name ?? '', passwordHash: passwordHash! }).returning();
        } catch (err) {
          if (isUniqueViolation(err)) throw conflict('an account for this email was created meanwhile; accept again with its password');
          throw err;
        }
      }
      const [already] = await tx.select({ id: memberships.id }).from(memberships).where(and(eq(memberships.organizationId, inv.organizationId), eq(memberships.userId, person!.id)));
      if (already) throw conflict(`${inv.email} is already a member of ${organization.name}`);
      const [m] = await tx.insert(memberships).values({ id: newId('mem'), organizationId: inv.organizationId, userId: person!.id, role: inv.role }).returning();
      await tx.update(invitations).set({ acceptedAt: this.now(), acceptedByUserId: person!.id }).where(eq(invitations.id, inv.id));
      const actor = { type: 'user' as const, id: person!.id };
      await this.audit.record(
        { organizationId: inv.organizationId, actor, action: 'invitation.accepted', target: { type: 'invitation', id: inv.id }, metadata: { email: inv.email, role: inv.role, memberId: m!.id }, ...meta },
        tx,
      );
      await this.audit.record(
        { organizationId: inv.organizationId, actor, action: 'member.added', target: { type: 'member', id: m!.id }, metadata: { email: inv.email, role: inv.role, invitationId: inv.id }, ...meta },
        tx,
      );
      return {
        user: { id: person!.id, email: person!.email, name: person!.name },
        organization: { id: organization.id, name: organization.name },
        role: inv.role,
        memberId: m!.id,
      };
    });
  }

  /**
   * Counts a wrong password against the invitation (void at the limit) and answers 401. The failure is a
   * failed login of the account's owner, so it goes to their organizations only, never to the inviting one
   * (they are not a member there yet).
   */
  private async failAttempt(row: Row, user: { id: string } | null, meta: Meta): Promise<never> {
    const [counted] = await this.db
      .update(invitations)
      .set({ failedAttempts: sql`${invitations.failedAttempts} + 1` })
      .where(eq(invitations.id, row.id))
      .returning({ failedAttempts: invitations.failedAttempts });
    const memberOf = user ? await this.db.select({ organizationId: memberships.organizationId }).from(memberships).where(eq(memberships.userId, user.id)) : [];
    for (const organizationId of memberOf.length > 0 ? memberOf.map((r) => r.organizationId) : [null]) {
      await this.audit.record({
        organizationId,
        actor: { type: user ? 'user' : 'anonymous', id: user?.id ?? null },
        action: 'login.failed',
        metadata: { email: row.email, reason: user ? 'wrong_password' : 'weak_password', via: 'invitation' },
        ...meta,
      });
    }
    if ((counted?.failedAttempts ?? 0) >= MAX_FAILED_ACCEPTS) {
      await this.audit.record({
        organizationId: row.organizationId,
        actor: { type: 'system' },
        action: 'invitation.revoked',
        target: { type: 'invitation', id: row.id },
        metadata: { email: row.email, role: row.role, reason: 'too_many_failed_attempts' },
        ...meta,
      });
    }
    throw new AppError(
      'invalid_credentials',
      `the password is wrong for this account, or shorter than ${MIN_PASSWORD_LENGTH} characters for a new one`,
      401,
    );
  }

  /** The invitation a token opens, or a 404/410 saying why it cannot be used. */
  private async findOpen(db: Db, token: string, lock = false) {
    const query = db
      .select({ row: invitations, organization: organizations })
      .from(invitations)
      .innerJoin(organizations, eq(organizations.id, invitations.organizationId))
      .where(eq(invitations.tokenHash, sha256(token)));
    const [found] = lock ? await query.for('update', { of: invitations }) : await query;
    if (!found) throw new AppError('not_found', 'this invitation link is not valid; check that it was copied whole', 404);
    const { row, organization } = found;
    switch (this.statusOf(row)) {
      case 'accepted':
        throw new AppError('invitation_used', 'this invitation was already accepted; log in instead', 410);
      case 'revoked':
        throw new AppError('invitation_revoked', 'this invitation was revoked; ask for a new one', 410);
      case 'void':
        throw new AppError('invitation_void', `this invitation is void after ${MAX_FAILED_ACCEPTS} wrong passwords; ask for a new one`, 410);
      case 'expired':
        throw new AppError('invitation_expired', `this invitation expired at ${row.expiresAt.toISOString()}; ask for a new one`, 410);
      case 'pending':
        break;
    }
    if (organization.status !== 'active') throw forbidden('the organization is suspended');
    return { row, organization };
  }

  private isOpen() {
    return and(
      isNull(invitations.acceptedAt),
      isNull(invitations.revokedAt),
      lt(invitations.failedAttempts, MAX_FAILED_ACCEPTS),
      gt(invitations.expiresAt, this.now()),
    );
  }

  private statusOf(r: Row): InvitationStatus {
    if (r.acceptedAt) return 'accepted';
    if (r.revokedAt) return 'revoked';
    if (r.failedAttempts >= MAX_FAILED_ACCEPTS) return 'void';
    if (r.expiresAt.getTime() <= this.now().getTime()) return 'expired';
    return 'pending';
  }

  private toView(r: Row): InvitationView {
    const invitedBy = r.invitedByUserId ? { type: 'user' as const, id: r.invitedByUserId } : r.invitedByKeyId ? { type: 'api_key' as const, id: r.invitedByKeyId } : null;
    return {
      id: r.id,
      object: 'invitation',
      email: r.email,
      role: r.role,
      status: this.statusOf(r),
      invitedBy,
      createdAt: r.createdAt.toISOString(),
      expiresAt: r.expiresAt.toISOString(),
      acceptedAt: r.acceptedAt?.toISOString() ?? null,
      revokedAt: r.revokedAt?.toISOString() ?? null,
    };
  }
}
