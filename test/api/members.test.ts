import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { expectError } from '../helpers/errors.js';
import { addMember, asSession, invite, type JoinedMember } from '../helpers/members.js';

interface MemberBody {
  id: string;
  userId: string;
  email: string;
  role: string;
}
interface AuditEntry {
  action: string;
  actorId: string | null;
  targetId: string | null;
  requestId: string | null;
  metadata: Record<string, unknown>;
}

describe('/v1/members', () => {
  let t: TestApp;
  let org: TestOrg;
  const members = async () => (await t.as(org.keys.viewer, { method: 'GET', url: '/v1/members?limit=100' })).json<{ data: MemberBody[] }>().data;
  const ownerMembership = async () => (await members()).find((m) => m.email === org.ownerEmail)!;
  const invitations = async () => (await t.as(org.keys.owner, { method: 'GET', url: '/v1/invitations?limit=100' })).json<{ data: { id: string; email: string; role: string }[] }>().data;
  const audit = async (action: string) =>
    (await t.as(org.keys.owner, { method: 'GET', url: `/v1/audit-log?action=${action}&limit=100` })).json<{ data: AuditEntry[] }>().data;
  const me = (key: string) => t.as(key, { method: 'GET', url: '/v1/me' });
  const keyIdOf = async (secret: string) => (await me(secret)).json<{ actor: { id: string } }>().actor.id;
  /** A key made by `by` (a member's session, or another key's secret). */
  const makeKey = async (by: JoinedMember | string, role: string, scopes?: string[]) => {
    const opts = { method: 'POST' as const, url: '/v1/api-keys', payload: { name: `${role} key`, role, ...(scopes ? { scopes } : {}) } };
    const res = typeof by === 'string' ? await t.as(by, opts) : await asSession(t, by.session, opts);
    if (res.statusCode !== 201) throw new Error(`make key: ${res.body}`);
    return res.json<{ id: string; secret: string }>();
  };

  beforeAll(async () => {
    t = await testApp();
    org = await t.createOrg();
  });
  afterAll(() => t.close());

  it('lists the bootstrap owner as a member', async () => {
    expect(await ownerMembership()).toMatchObject({ role: 'owner', email: org.ownerEmail });
  });

  it('adds nobody when POST /v1/members is called: it invites, and the person joins when they accept', async () => {
    const res = await t.as(org.keys.admin, { method: 'POST', url: '/v1/members', payload: { email: 'New.Person@Example.test', role: 'member' } });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ object: 'invitation', email: 'new.person@example.test', role: 'member', status: 'pending' });
    expect(res.json()).not.toHaveProperty('initialPassword');
    expect((await members()).map((m) => m.email)).not.toContain('new.person@example.test');
  });

  it('refuses to invite someone who is already a member with 409', async () => {
    const joined = await addMember(t, org.keys.admin, { role: 'viewer' });
    const error = expectError(await t.as(org.keys.admin, { method: 'POST', url: '/v1/invitations', payload: { email: joined.email, role: 'viewer' } }), 409, 'conflict');
    expect(error.message).toContain('already a member');
  });

  it('does not let an admin invite an owner, and creates no invitation', async () => {
    const res = await t.as(org.keys.admin, { method: 'POST', url: '/v1/invitations', payload: { email: 'wannabe@example.test', role: 'owner' } });
    expect(expectError(res, 403, 'forbidden').message).toMatch(/owner/);
    expect((await invitations()).map((i) => i.email)).not.toContain('wannabe@example.test');
  });

  it('takes no password for the invitee: the field is refused with 400', async () => {
    const other = await t.createOrg('Elsewhere');
    const res = await t.as(org.keys.admin, { method: 'POST', url: '/v1/invitations', payload: { email: other.ownerEmail, role: 'viewer', password: 'a-new-password-123' } });
    expectError(res, 400, 'validation_failed');
    const login = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: other.ownerEmail, password: other.ownerPassword } });
    expect(login.statusCode).toBe(200);
  });

  it('refuses to demote the last owner', async () => {
    const owner = await ownerMembership();
    const res = await t.as(org.keys.owner, { method: 'PATCH', url: `/v1/members/${owner.id}`, payload: { role: 'admin' } });
    expect(res.statusCode).toBe(409);
    expect((await ownerMembership()).role).toBe('owner');
  });

  it('refuses to remove the last owner', async () => {
    const owner = await ownerMembership();
    const res = await t.as(org.keys.owner, { method: 'DELETE', url: `/v1/members/${owner.id}` });
    expect(res.statusCode).toBe(409);
    expect(await ownerMembership()).toBeDefined();
  });

  it("ends a removed member's dashboard access at once", async () => {
    const leaving = await addMember(t, org.keys.admin, { role: 'member' });
    expect((await asSession(t, leaving.session, { method: 'GET', url: '/v1/agents' })).statusCode).toBe(200);
    expect((await t.as(org.keys.admin, { method: 'DELETE', url: `/v1/members/${leaving.memberId}` })).statusCode).toBe(204);
    expect((await asSession(t, leaving.session, { method: 'GET', url: '/v1/agents' })).statusCode).toBe(401);
  });

  describe('granting roles', () => {
    let membersOnly: string;
    beforeAll(async () => {
      // The admin role would allow every grant below; only the scope can be what refuses.
      membersOnly = (await makeKey(org.keys.owner, 'admin', ['members'])).secret;
    });

    it('refuses to add an admin member with a key scoped to members, creating nothing', async () => {
      const res = await t.as(membersOnly, { method: 'POST', url: '/v1/members', payload: { email: 'escalate@example.test', role: 'admin' } });
      expect(expectError(res, 403, 'forbidden').message).toMatch(/\*.*scope/);
      expect((await invitations()).map((i) => i.email)).not.toContain('escalate@example.test');
      expect((await members()).map((m) => m.email)).not.toContain('escalate@example.test');
    });

    it('refuses even a viewer invitation from a key scoped to members: a viewer reads every resource', async () => {
      const res = await t.as(membersOnly, { method: 'POST', url: '/v1/invitations', payload: { email: 'reader@example.test', role: 'viewer' } });
      expectError(res, 403, 'forbidden');
      expect((await invitations()).map((i) => i.email)).not.toContain('reader@example.test');
    });

    it('refuses to change a role with a key scoped to members, leaving the role as it was', async () => {
      const target = await addMember(t, org.keys.owner, { role: 'viewer' });
      const res = await t.as(membersOnly, { method: 'PATCH', url: `/v1/members/${target.memberId}`, payload: { role: 'admin' } });
      expectError(res, 403, 'forbidden');
      expect((await members()).find((m) => m.id === target.memberId)?.role).toBe('viewer');
    });

    it('refuses an admin session granting a role above its own', async () => {
      const admin = await addMember(t, org.keys.owner, { role: 'admin' });
      const target = await addMember(t, org.keys.owner, { role: 'member' });
      const res = await asSession(t, admin.session, { method: 'PATCH', url: `/v1/members/${target.memberId}`, payload: { role: 'owner' } });
      expectError(res, 403, 'forbidden');
      expect((await members()).find((m) => m.id === target.memberId)?.role).toBe('member');
    });

    it('refuses a member-role key with every scope to invite anyone', async () => {
      const res = await t.as(org.keys.member, { method: 'POST', url: '/v1/invitations', payload: { email: 'by-member@example.test', role: 'viewer' } });
      expectError(res, 403, 'forbidden');
    });

    it('lets an admin with every scope invite an admin and promote a viewer to admin', async () => {
      const admin = await addMember(t, org.keys.owner, { role: 'admin' });
      const invited = await asSession(t, admin.session, { method: 'POST', url: '/v1/invitations', payload: { email: 'next.admin@example.test', role: 'admin' } });
      expect(invited.statusCode, invited.body).toBe(201);
      const target = await addMember(t, org.keys.owner, { role: 'viewer' });
      const promoted = await t.as(org.keys.admin, { method: 'PATCH', url: `/v1/members/${target.memberId}`, payload: { role: 'admin' } });
      expect(promoted.json()).toMatchObject({ id: target.memberId, role: 'admin' });
    });

    it('lets a key scoped to members remove a member: removing grants nothing', async () => {
      const target = await addMember(t, org.keys.owner, { role: 'member' });
      expect((await t.as(membersOnly, { method: 'DELETE', url: `/v1/members/${target.memberId}` })).statusCode).toBe(204);
      expect((await members()).map((m) => m.id)).not.toContain(target.memberId);
    });

    it('records permission.denied for a refused grant, naming the role asked for', async () => {
      const res = await t.as(membersOnly, { method: 'POST', url: '/v1/invitations', payload: { email: 'audited@example.test', role: 'admin' } });
      expectError(res, 403, 'forbidden');
      const entry = (await audit('permission.denied')).find((e) => e.requestId === res.headers['x-request-id']);
      expect(entry).toMatchObject({ actorId: await keyIdOf(membersOnly), metadata: { grants: 'admin', role: 'admin', scopes: ['members'] } });
    });

    it('lets an owner promote a member to owner, after which the first owner can step down', async () => {
      // An organization of its own: stepping down revokes the first owner's owner key, which the rest of this file uses.
      const own = await t.createOrg('Stepping down');
      const second = await addMember(t, own.keys.owner, { role: 'member' });
      const promoted = await t.as(own.keys.owner, { method: 'PATCH', url: `/v1/members/${second.memberId}`, payload: { role: 'owner' } });
      expect(promoted.json().role).toBe('owner');
      const list = (await asSession(t, second.session, { method: 'GET', url: '/v1/members?limit=100' })).json<{ data: MemberBody[] }>().data;
      const first = list.find((m) => m.email === own.ownerEmail)!;
      const stepDown = await asSession(t, second.session, { method: 'PATCH', url: `/v1/members/${first.id}`, payload: { role: 'admin' } });
      expect(stepDown.statusCode, stepDown.body).toBe(200);
      expect(stepDown.json().role).toBe('admin');
      // The first owner's owner key now exceeds its creator's role.
      expectError(await me(own.keys.owner), 401, 'unauthorized');
    });
  });

  describe('keys of removed and demoted members', () => {
    const works = async (secret: string) => (await me(secret)).statusCode === 200;
    const remove = (memberId: string) => t.as(org.keys.owner, { method: 'DELETE', url: `/v1/members/${memberId}` });
    const demote = (memberId: string, role: string) => t.as(org.keys.owner, { method: 'PATCH', url: `/v1/members/${memberId}`, payload: { role } });

    it("revokes a removed member's keys, and the keys those keys made, down the chain", async () => {
      const leaving = await addMember(t, org.keys.owner, { role: 'admin' });
      const own = await makeKey(leaving, 'admin');
      const child = await makeKey(own.secret, 'admin');
      const grandchild = await makeKey(child.secret, 'viewer');
      expect([await works(own.secret), await works(child.secret), await works(grandchild.secret)]).toEqual([true, true, true]);

      expect((await remove(leaving.memberId)).statusCode).toBe(204);

      for (const key of [own, child, grandchild]) {
        const error = expectError(await me(key.secret), 401, 'unauthorized');
        expect(error.message).toMatch(/revoked/);
      }
    });

    it('keeps the keys other members made working when one member is removed', async () => {
      const staying = await addMember(t, org.keys.owner, { role: 'admin' });
      const leaving = await addMember(t, org.keys.owner, { role: 'admin' });
      const stayingKey = await makeKey(staying, 'member');
      await makeKey(leaving, 'member');
      expect((await remove(leaving.memberId)).statusCode).toBe(204);
      expect(await works(stayingKey.secret)).toBe(true);
      expect(await works(org.keys.admin)).toBe(true);
    });

    it('records api_key.revoked for every key a removal revoked, with the reason and the member', async () => {
      const leaving = await addMember(t, org.keys.owner, { role: 'admin' });
      const own = await makeKey(leaving, 'admin');
      const child = await makeKey(own.secret, 'viewer');
      const res = await remove(leaving.memberId);
      const entries = (await audit('api_key.revoked')).filter((e) => e.requestId === res.headers['x-request-id']);
      expect(entries.map((e) => e.targetId).sort()).toEqual([own.id, child.id].sort());
      for (const e of entries) expect(e.metadata).toMatchObject({ reason: 'member_removed', memberId: leaving.memberId, userId: leaving.userId });
    });

    it("revokes a demoted member's keys above the new role and keeps the others", async () => {
      const demoted = await addMember(t, org.keys.owner, { role: 'admin' });
      const adminKey = await makeKey(demoted, 'admin');
      const memberKey = await makeKey(demoted, 'member');
      const viewerKey = await makeKey(adminKey.secret, 'viewer');
      const adminGrandchild = await makeKey(adminKey.secret, 'admin');

      const res = await demote(demoted.memberId, 'member');
      expect(res.statusCode, res.body).toBe(200);

      expect(await works(adminKey.secret)).toBe(false);
      expect(await works(adminGrandchild.secret)).toBe(false);
      expect(await works(memberKey.secret)).toBe(true);
      expect(await works(viewerKey.secret)).toBe(true);
      const entries = (await audit('api_key.revoked')).filter((e) => e.requestId === res.headers['x-request-id']);
      expect(entries.map((e) => e.targetId).sort()).toEqual([adminKey.id, adminGrandchild.id].sort());
      expect(entries[0]!.metadata).toMatchObject({ reason: 'member_demoted', to: 'member' });
    });

    it('revokes the pending invitations a removed member sent', async () => {
      const leaving = await addMember(t, org.keys.owner, { role: 'admin' });
      const byKey = await makeKey(leaving, 'admin');
      const sent = await asSession(t, leaving.session, { method: 'POST', url: '/v1/invitations', payload: { email: 'accomplice@example.test', role: 'admin' } });
      const sentByKey = await invite(t, byKey.secret, 'accomplice2@example.test', 'member');
      expect(sent.statusCode).toBe(201);
      expect((await remove(leaving.memberId)).statusCode).toBe(204);

      const pending = (await invitations()).map((i) => i.id);
      expect(pending).not.toContain(sent.json<{ id: string }>().id);
      expect(pending).not.toContain(sentByKey.id);
      const accepted = await t.app.inject({ method: 'POST', url: '/auth/invitations/accept', payload: { token: sent.json<{ token: string }>().token, password: 'accomplice-password-1' } });
      expectError(accepted, 410, 'invitation_revoked');
    });

    it("revokes a demoted member's pending invitations above the new role", async () => {
      const demoted = await addMember(t, org.keys.owner, { role: 'admin' });
      const high = await asSession(t, demoted.session, { method: 'POST', url: '/v1/invitations', payload: { email: 'high@example.test', role: 'admin' } });
      const low = await asSession(t, demoted.session, { method: 'POST', url: '/v1/invitations', payload: { email: 'low@example.test', role: 'viewer' } });
      expect((await demote(demoted.memberId, 'member')).statusCode).toBe(200);
      const pending = (await invitations()).map((i) => i.id);
      expect(pending).not.toContain(high.json<{ id: string }>().id);
      expect(pending).toContain(low.json<{ id: string }>().id);
    });
  });

  it('records member changes in the audit log', async () => {
    for (const action of ['member.added', 'member.role_changed', 'member.removed', 'invitation.created', 'invitation.accepted']) {
      expect(await audit(action), action).not.toHaveLength(0);
    }
  });
});
