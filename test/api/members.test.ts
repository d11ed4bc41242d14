import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';

interface MemberBody {
  id: string;
  email: string;
  role: string;
  initialPassword?: string | null;
}

describe('/v1/members', () => {
  let t: TestApp;
  let org: TestOrg;
  const add = (key: string, payload: object) => t.as(key, { method: 'POST', url: '/v1/members', payload });
  const members = async () => (await t.as(org.keys.viewer, { method: 'GET', url: '/v1/members?limit=100' })).json<{ data: MemberBody[] }>().data;
  const ownerMembership = async () => (await members()).find((m) => m.email === org.ownerEmail)!;

  beforeAll(async () => {
    t = await testApp();
    org = await t.createOrg();
  });
  afterAll(() => t.close());

  it('lists the bootstrap owner as a member', async () => {
    expect(await ownerMembership()).toMatchObject({ role: 'owner', email: org.ownerEmail });
  });

  it('lets an admin add a new person, whose generated password logs in once', async () => {
    const res = await add(org.keys.admin, { email: 'New.Person@Example.test', role: 'member' });
    expect(res.statusCode).toBe(201);
    const body = res.json<MemberBody>();
    expect(body).toMatchObject({ email: 'new.person@example.test', role: 'member' });
    const login = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'new.person@example.test', password: body.initialPassword } });
    expect(login.statusCode).toBe(200);
    expect(login.json().role).toBe('member');
  });

  it('refuses to add the same person twice', async () => {
    await add(org.keys.admin, { email: 'twice@example.test', role: 'viewer' });
    const res = await add(org.keys.admin, { email: 'twice@example.test', role: 'viewer' });
    expect(res.statusCode).toBe(409);
  });

  it('does not let an admin add an owner', async () => {
    const res = await add(org.keys.admin, { email: 'wannabe@example.test', role: 'owner' });
    expect(res.statusCode).toBe(403);
    expect((await members()).map((m) => m.email)).not.toContain('wannabe@example.test');
  });

  it('does not let an admin set the password of an account that already exists', async () => {
    const other = await t.createOrg('Elsewhere');
    const res = await add(org.keys.admin, { email: other.ownerEmail, role: 'viewer', password: 'a-new-password-123' });
    expect(res.statusCode).toBe(409);
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

  it('lets an owner promote a member to owner, after which the first owner can step down', async () => {
    const added = (await add(org.keys.owner, { email: 'second.owner@example.test', role: 'member' })).json<MemberBody>();
    const promoted = await t.as(org.keys.owner, { method: 'PATCH', url: `/v1/members/${added.id}`, payload: { role: 'owner' } });
    expect(promoted.json().role).toBe('owner');
    const first = await ownerMembership();
    const stepDown = await t.as(org.keys.owner, { method: 'PATCH', url: `/v1/members/${first.id}`, payload: { role: 'admin' } });
    expect(stepDown.statusCode).toBe(200);
    expect(stepDown.json().role).toBe('admin');
  });

  it('ends a removed member\'s dashboard access at once', async () => {
    const added = (await add(org.keys.admin, { email: 'leaving@example.test', role: 'member' })).json<MemberBody>();
    const login = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'leaving@example.test', password: added.initialPassword } });
    const cookie = login.cookies.find((c) => c.name === 'vocelio_session')!.value;
    expect((await t.app.inject({ method: 'GET', url: '/v1/agents', cookies: { vocelio_session: cookie } })).statusCode).toBe(200);
    expect((await t.as(org.keys.admin, { method: 'DELETE', url: `/v1/members/${added.id}` })).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'GET', url: '/v1/agents', cookies: { vocelio_session: cookie } })).statusCode).toBe(401);
  });

  it('records member changes in the audit log', async () => {
    const log = await t.as(org.keys.admin, { method: 'GET', url: '/v1/audit-log?limit=100' });
    const actions = new Set(log.json<{ data: { action: string }[] }>().data.map((e) => e.action));
    for (const a of ['member.added', 'member.role_changed', 'member.removed']) expect(actions).toContain(a);
  });
});
