import { and, asc, eq, gt, lt } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { newId, randomToken } from '../shared/ids.js';
import { AppError } from '../shared/errors.js';
import type { AuditService } from '../audit/audit.service.js';
import { memberships, organizations, users, type Role } from '../organizations/organizations.table.js';
import { normalizeEmail } from '../organizations/organizations.service.js';
import { sessions } from './auth.table.js';
import { sha256 } from './api-keys.service.js';
import { dummyPasswordHash, verifyPassword } from './passwords.js';
import type { Principal } from './access.js';

/** What a successful login hands back: the cookie token (secret) and the CSRF token the dashboard echoes. */
export interface LoginResult {
  token: string;
  csrfToken: string;
  expiresAt: Date;
  user: { id: string; email: string; name: string };
  organization: { id: string; name: string };
  role: Role;
}

/** Dashboard logins: email + password in, session cookie token out. */
export class SessionsService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly ttlHours: number,
  ) {}

  /**
   * Checks the password and opens a session in `organizationId` (default: the user's oldest membership).
   * Every failure is the same 401 so that it does not reveal which emails exist.
   */
  async login(input: { email: string; password: string; organizationId?: string }, meta: { ip?: string; requestId?: string } = {}): Promise<LoginResult> {
    const email = normalizeEmail(input.email);
    const [user] = await this.db.select().from(users).where(eq(users.email, email));
    const ok = await verifyPassword(input.password, user?.passwordHash ?? (await dummyPasswordHash()));
    // Read the memberships whatever the outcome: failures must be visible to the user's organizations,
    // and the same queries on every path keep response times from telling which emails exist.
    const memberOf = await this.db
      .select({ m: memberships, org: organizations })
      .from(memberships)
      .innerJoin(organizations, eq(organizations.id, memberships.organizationId))
      .where(eq(memberships.userId, user?.id ?? ''))
      .orderBy(asc(memberships.id));
    const membership = memberOf.find((r) => !input.organizationId || r.org.id === input.organizationId);
    if (!user || !ok || !membership || membership.org.status !== 'active') {
      const reason = !user ? 'unknown_email' : !ok ? 'wrong_password' : !membership ? 'no_membership' : 'organization_suspended';
      const orgIds = memberOf.length > 0 ? memberOf.map((r) => r.org.id) : [null];
      for (const organizationId of orgIds) {
        await this.audit.record({
          organizationId,
          actor: { type: user ? 'user' : 'anonymous', id: user?.id ?? null },
          action: 'login.failed',
          metadata: { email, reason },
          ...meta,
        });
      }
      throw new AppError('invalid_credentials', 'email or password is wrong', 401);
    }
    return this.open({ user, organization: membership.org, role: membership.m.role }, meta);
  }

  /** Opens a session for a user already proven to be who they say (a login, an accepted invitation). */
  async open(
    who: { user: { id: string; email: string; name: string }; organization: { id: string; name: string }; role: Role },
    meta: { ip?: string; requestId?: string } = {},
  ): Promise<LoginResult> {
    const token = randomToken(32);
    const csrfToken = randomToken(24);
    const expiresAt = new Date(Date.now() + this.ttlHours * 3_600_000);
    const sessionId = newId('ses');
    await this.db.insert(sessions).values({ id: sessionId, tokenHash: sha256(token), userId: who.user.id, organizationId: who.organization.id, csrfToken, expiresAt });
    await this.audit.record(
      {
        organizationId: who.organization.id,
        actor: { type: 'user', id: who.user.id },
        action: 'login.succeeded',
        target: { type: 'session', id: sessionId },
        ...meta,
      },
    );
    return {
      token,
      csrfToken,
      expiresAt,
      user: { id: who.user.id, email: who.user.email, name: who.user.name },
      organization: { id: who.organization.id, name: who.organization.name },
      role: who.role,
    };
  }

  /** Resolves a cookie token; the role is read from the membership each time, so changes apply at once. */
  async authenticate(token: string): Promise<Principal | null> {
    if (token.length > 200) return null;
    const [row] = await this.db
      .select({ s: sessions, role: memberships.role, orgStatus: organizations.status })
      .from(sessions)
      .innerJoin(memberships, and(eq(memberships.userId, sessions.userId), eq(memberships.organizationId, sessions.organizationId)))
      .innerJoin(organizations, eq(organizations.id, sessions.organizationId))
      .where(and(eq(sessions.tokenHash, sha256(token)), gt(sessions.expiresAt, new Date())));
    if (!row || row.orgStatus !== 'active') return null;
    return {
      organizationId: row.s.organizationId,
      role: row.role,
      scopes: ['*'],
      actor: { type: 'user', id: row.s.userId, sessionId: row.s.id },
      csrfToken: row.s.csrfToken,
    };
  }

  /** Ends a session (logout). */
  async logout(principal: Principal, meta: { ip?: string; requestId?: string } = {}): Promise<void> {
    if (principal.actor.type !== 'user') return;
    await this.db.delete(sessions).where(eq(sessions.id, principal.actor.sessionId));
    await this.audit.record({ organizationId: principal.organizationId, actor: { type: 'user', id: principal.actor.id }, action: 'logout', ...meta });
  }

  /** Deletes expired sessions; returns how many. */
  async purgeExpired(): Promise<number> {
    const gone = await this.db.delete(sessions).where(lt(sessions.expiresAt, new Date())).returning({ id: sessions.id });
    return gone.length;
  }
}
