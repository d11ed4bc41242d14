import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'drizzle-orm';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { expectError } from '../helpers/errors.js';
import { accept, addMember, asSession, invite, sessionOf } from '../helpers/members.js';

interface Invitation {
  id: string;
  object: 'invitation';
  email: string;
  role: string;
  status: string;
  invitedBy: unknown;
  createdAt: string;
  expiresAt: string;
  token?: string;
  acceptUrl?: string;
}
interface AuditEntry {
  action: string;
  requestId: string | null;
  targetId: string | null;
  metadata: Record<string, unknown>;
}

let serial = 0;
const freshEmail = () => `invitee-${process.pid}-${++serial}@example.test`;

describe('invitations', () => {
  let t: TestApp;
  let org: TestOrg;
  /** Another organization, whose owner is the "person who already has an account". */
  let elsewhere: TestOrg;

  const post = (payload: object, key = org.keys.admin) => t.as(key, { method: 'POST', url: '/v1/invitations', payload });
  const pending = async (o = org) => (await t.as(o.keys.admin, { method: 'GET', url: '/v1/invitations?limit=100' })).json<{ data: Invitation[] }>().data;
  const memberEmails = async (o = org) =>
    (await t.as(o.keys.viewer, { method: 'GET', url: '/v1/members?limit=100' })).json<{ data: { email: string }[] }>().data.map((m) => m.email);
  const audit = async (action: string, o = org) =>
    (await t.as(o.keys.owner, { method: 'GET', url: `/v1/audit-log?action=${action}&limit=100` })).json<{ data: AuditEntry[] }>().data;
  const login = (email: string, password: string) => t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  const expire = (id: string) => t.database.db.execute(sql`update invitations set expires_at = now() - interval '1 second' where id = ${id}`);
  const preview = (token: string) => t.app.inject({ method: 'POST', url: '/auth/invitations/preview', payload: { token } });

  beforeAll(async () => {
    t = await testApp({ PUBLIC_URL: 'https://voice.example.test' });
    org = await t.createOrg('Inviting Org');
    elsewhere = await t.createOrg('Elsewhere');
  });
  afterAll(() => t.close());

  describe('creating one', () => {
    it.each(['/v1/invitations', '/v1/members'])('answers the same whether the invited email has an account or not (POST %s)', async (url) => {
      const other = await t.createOrg('Has an account');
      const existing = await t.as(org.keys.admin, { method: 'POST', url, payload: { email: other.ownerEmail, role: 'member' } });
      const unknown = await t.as(org.keys.admin, { method: 'POST', url, payload: { email: freshEmail(), role: 'member' } });
      const shape = (res: LightMyRequestResponse) => {
        const body = res.json<Invitation>();
        return {
          status: res.statusCode,
          body: { ...body, id: '<id>', email: '<email>', token: '<token>', acceptUrl: body.acceptUrl?.replace(body.token!, '<token>'), createdAt: '<t>', expiresAt: '<t>' },
          headers: Object.keys(res.headers).filter((h) => !['x-request-id', 'date', 'content-length'].includes(h)).sort(),
        };
      };
      expect(shape(existing)).toEqual(shape(unknown));
      expect(existing.statusCode).toBe(201);
    });

    it('returns a pending invitation with a one-time accept link built from PUBLIC_URL, valid for 7 days', async () => {
      const before = Date.now();
      const res = await post({ email: 'Mixed.Case@Example.test', role: 'viewer' });
      expect(res.statusCode).toBe(201);
      const body = res.json<Invitation>();
      expect(body).toMatchObject({ id: expect.stringMatching(/^inv_[0-9a-z]{26}$/), object: 'invitation', email: 'mixed.case@example.test', role: 'viewer', status: 'pending' });
      expect(body.token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      // The token rides in the fragment, which browsers never send to a server or put in a Referer.
      expect(body.acceptUrl).toBe(`https://voice.example.test/invitations/accept#token=${body.token}`);
      const ttl = Date.parse(body.expiresAt) - before;
      expect(ttl).toBeGreaterThan(7 * 86_400_000 - 60_000);
      expect(ttl).toBeLessThan(7 * 86_400_000 + 60_000);
      expect(body.invitedBy).toEqual({ type: 'api_key', id: expect.stringMatching(/^key_/) });
    });

    it('creates no membership for an existing account until its owner accepts', async () => {
      const other = await t.createOrg('Not yet joined');
      expect((await t.as(org.keys.admin, { method: 'POST', url: '/v1/members', payload: { email: other.ownerEmail, role: 'admin' } })).statusCode).toBe(201);
      expect(await memberEmails()).not.toContain(other.ownerEmail);
    });

    it('refuses to invite an email with a pending invitation again, with 409 naming it', async () => {
      const email = freshEmail();
      const first = await post({ email, role: 'viewer' });
      const again = await post({ email: email.toUpperCase(), role: 'member' });
      const error = expectError(again, 409, 'conflict');
      expect(error.message).toContain('pending invitation');
      expect(error.message).toContain(first.json<Invitation>().id);
    });

    it('accepts a new invitation for an email whose last one expired', async () => {
      const email = freshEmail();
      const first = await post({ email, role: 'viewer' });
      await expire(first.json<Invitation>().id);
      expect((await post({ email, role: 'viewer' })).statusCode).toBe(201);
    });

    it('answers 400 to a malformed email or an unknown role, creating nothing', async () => {
      const before = await pending();
      expectError(await post({ email: 'not an email', role: 'viewer' }), 400, 'validation_failed');
      expectError(await post({ email: freshEmail(), role: 'superuser' }), 400, 'validation_failed');
      expectError(await post({ email: freshEmail() }), 400, 'validation_failed');
      expect(await pending()).toEqual(before);
    });
  });

  describe('listing and revoking', () => {
    it('lists pending invitations newest first, never with the token', async () => {
      const inv = await invite(t, org.keys.admin, freshEmail(), 'member');
      const res = await t.as(org.keys.admin, { method: 'GET', url: '/v1/invitations?limit=100' });
      expect(res.statusCode).toBe(200);
      expect(res.json<{ data: Invitation[] }>().data[0]).toMatchObject({ id: inv.id, status: 'pending' });
      expect(res.body).not.toContain(inv.token);
      expect(res.body).not.toContain('"token"');
    });

    it('leaves accepted, revoked and expired invitations out of the list', async () => {
      const accepted = await invite(t, org.keys.admin, freshEmail(), 'viewer');
      await accept(t, accepted.token, 'a-long-enough-password');
      const revoked = await invite(t, org.keys.admin, freshEmail(), 'viewer');
      await t.as(org.keys.admin, { method: 'DELETE', url: `/v1/invitations/${revoked.id}` });
      const expired = await invite(t, org.keys.admin, freshEmail(), 'viewer');
      await expire(expired.id);
      const ids = (await pending()).map((i) => i.id);
      for (const id of [accepted.id, revoked.id, expired.id]) expect(ids).not.toContain(id);
    });

    it('revokes an invitation: the answer says revoked, and its link then answers 410', async () => {
      const inv = await invite(t, org.keys.admin, freshEmail(), 'member');
      const res = await t.as(org.keys.admin, { method: 'DELETE', url: `/v1/invitations/${inv.id}` });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ id: inv.id, status: 'revoked' });
      expect(res.body).not.toContain(inv.token);
      expectError(await accept(t, inv.token, 'a-long-enough-password'), 410, 'invitation_revoked');
    });

    it("answers 404 to revoking another organization's invitation, which keeps working", async () => {
      const theirs = await invite(t, elsewhere.keys.admin, freshEmail(), 'viewer');
      expectError(await t.as(org.keys.owner, { method: 'DELETE', url: `/v1/invitations/${theirs.id}` }), 404, 'not_found');
      expect((await pending(elsewhere)).map((i) => i.id)).toContain(theirs.id);
    });

    it('lets only admins list invitations', async () => {
      expectError(await t.as(org.keys.member, { method: 'GET', url: '/v1/invitations' }), 403, 'forbidden');
    });
  });

  describe('accepting', () => {
    it('creates the account of a new person with their own password, adds them with the invited role and logs them in', async () => {
      const email = freshEmail();
      const inv = await invite(t, org.keys.admin, email, 'member');
      const res = await accept(t, inv.token, 'my-own-password-1', 'Ada');
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ user: { email, name: 'Ada' }, organization: { id: org.id, name: 'Inviting Org' }, role: 'member', csrfToken: expect.any(String) });
      const cookie = res.cookies.find((c) => c.name === 'vocelio_session');
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: true });
      // The session works, CSRF included.
      const session = sessionOf(res);
      const created = await asSession(t, session, { method: 'POST', url: '/v1/agents', payload: { name: 'made by the invitee' } });
      expect(created.statusCode).toBe(201);
      expect(await memberEmails()).toContain(email);
      expect((await login(email, 'my-own-password-1')).statusCode).toBe(200);
    });

    it('adds an existing account only with that account\'s own password, which it leaves unchanged', async () => {
      const other = await t.createOrg('Has an account');
      const inv = await invite(t, org.keys.admin, other.ownerEmail, 'viewer');
      const wrong = await accept(t, inv.token, 'the-admin-chose-this-1');
      expectError(wrong, 401, 'invalid_credentials');
      expect(await memberEmails()).not.toContain(other.ownerEmail);
      expect((await login(other.ownerEmail, 'the-admin-chose-this-1')).statusCode).toBe(401);

      const right = await accept(t, inv.token, other.ownerPassword);
      expect(right.statusCode, right.body).toBe(200);
      expect(right.json()).toMatchObject({ organization: { id: org.id }, role: 'viewer' });
      expect(await memberEmails()).toContain(other.ownerEmail);
      // Still a member of their own organization, with the same password.
      expect((await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: other.ownerEmail, password: other.ownerPassword, organizationId: other.id } })).json()).toMatchObject({ role: 'owner' });
    });

    it('answers a wrong password for an existing account and a too-short one for a new account alike', async () => {
      const other = await t.createOrg('Probed');
      const existing = await invite(t, org.keys.admin, other.ownerEmail, 'viewer');
      const fresh = await invite(t, org.keys.admin, freshEmail(), 'viewer');
      const strip = (res: LightMyRequestResponse) => ({ status: res.statusCode, error: { ...res.json<{ error: object }>().error, requestId: undefined } });
      const forExisting = await accept(t, existing.token, 'short');
      expect(strip(forExisting)).toEqual(strip(await accept(t, fresh.token, 'short')));
      expect(forExisting.statusCode).toBe(401);
    });

    it('refuses a token a second time with 410 once it was used', async () => {
      const inv = await invite(t, org.keys.admin, freshEmail(), 'viewer');
      expect((await accept(t, inv.token, 'a-long-enough-password')).statusCode).toBe(200);
      expectError(await accept(t, inv.token, 'a-long-enough-password'), 410, 'invitation_used');
    });

    it('refuses an expired invitation with 410, creating no account', async () => {
      const email = freshEmail();
      const inv = await invite(t, org.keys.admin, email, 'viewer');
      await expire(inv.id);
      expectError(await accept(t, inv.token, 'a-long-enough-password'), 410, 'invitation_expired');
      expect((await login(email, 'a-long-enough-password')).statusCode).toBe(401);
    });

    it('refuses a token that was never issued with 404', async () => {
      expectError(await accept(t, 'x'.repeat(43), 'a-long-enough-password'), 404, 'not_found');
    });

    it('voids an invitation after 5 wrong passwords: even the right one is then refused', async () => {
      const other = await t.createOrg('Targeted');
      const inv = await invite(t, org.keys.admin, other.ownerEmail, 'admin');
      for (let i = 0; i < 5; i++) expectError(await accept(t, inv.token, `guess-number-${i}-xx`), 401, 'invalid_credentials');
      const error = expectError(await accept(t, inv.token, other.ownerPassword), 410, 'invitation_void');
      expect(error.message).toMatch(/5/);
      expect(await memberEmails()).not.toContain(other.ownerEmail);
      expect((await pending()).map((i) => i.id)).not.toContain(inv.id);
    });

    it('rate-limits accept attempts per address like login', async () => {
      const ip = '127.2.0.1';
      let last: LightMyRequestResponse | undefined;
      for (let i = 0; i < 21; i++) {
        last = await t.app.inject({ method: 'POST', url: '/auth/invitations/accept', remoteAddress: ip, payload: { token: `never-issued-${i}`.padEnd(43, 'x'), password: 'whatever-password' } });
      }
      expectError(last!, 429, 'rate_limited');
    });

    it('answers 400 to a body without a token or password', async () => {
      expectError(await t.app.inject({ method: 'POST', url: '/auth/invitations/accept', payload: { token: 'x'.repeat(43) } }), 400, 'validation_failed');
      expectError(await t.app.inject({ method: 'POST', url: '/auth/invitations/accept', payload: { password: 'a-long-enough-password' } }), 400, 'validation_failed');
    });
  });

  describe('previewing', () => {
    it('shows the organization, email, role and expiry, the same whether or not the email has an account', async () => {
      const other = await t.createOrg('Preview existing');
      const a = await invite(t, org.keys.admin, other.ownerEmail, 'member');
      const b = await invite(t, org.keys.admin, freshEmail(), 'member');
      const pa = await preview(a.token);
      const pb = await preview(b.token);
      expect(pa.statusCode).toBe(200);
      expect(pa.json()).toEqual({ organization: { name: 'Inviting Org' }, email: other.ownerEmail, role: 'member', expiresAt: expect.any(String) });
      expect(Object.keys(pb.json()).sort()).toEqual(Object.keys(pa.json()).sort());
    });

    it('answers 410 for a revoked invitation', async () => {
      const inv = await invite(t, org.keys.admin, freshEmail(), 'member');
      await t.as(org.keys.admin, { method: 'DELETE', url: `/v1/invitations/${inv.id}` });
      expectError(await preview(inv.token), 410, 'invitation_revoked');
    });
  });

  describe('audit', () => {
    it('records invitation.created, invitation.revoked and invitation.accepted with the invitation as target', async () => {
      const created = await invite(t, org.keys.admin, freshEmail(), 'viewer');
      const revoked = await invite(t, org.keys.admin, freshEmail(), 'viewer');
      await t.as(org.keys.admin, { method: 'DELETE', url: `/v1/invitations/${revoked.id}` });
      await accept(t, created.token, 'a-long-enough-password');
      expect((await audit('invitation.created')).map((e) => e.targetId)).toEqual(expect.arrayContaining([created.id, revoked.id]));
      expect((await audit('invitation.revoked')).map((e) => e.targetId)).toContain(revoked.id);
      expect((await audit('invitation.accepted')).map((e) => e.targetId)).toContain(created.id);
    });

    it("does not show an invitee's failed logins to the inviting organization before they accept", async () => {
      const invitee = await t.createOrg('Invitee home');
      // The route every client used to add members: it must not make anyone a member on its own.
      expect((await t.as(org.keys.admin, { method: 'POST', url: '/v1/members', payload: { email: invitee.ownerEmail, role: 'viewer' } })).statusCode).toBe(201);
      const failed = await login(invitee.ownerEmail, 'not-the-password');
      expect(failed.statusCode).toBe(401);
      const requestId = failed.headers['x-request-id'];
      expect((await audit('login.failed')).map((e) => e.requestId)).not.toContain(requestId);
      expect((await audit('login.failed', invitee)).map((e) => e.requestId)).toContain(requestId);
    });

    it("shows a member's failed logins to the organization once they accepted", async () => {
      const joined = await addMember(t, org.keys.admin, { role: 'viewer' });
      const failed = await login(joined.email, 'not-the-password');
      expect((await audit('login.failed')).map((e) => e.requestId)).toContain(failed.headers['x-request-id']);
    });
  });
});
