import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { eq } from 'drizzle-orm';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { expectError } from '../helpers/errors.js';
import { auditLog } from '../../src/audit/audit.table.js';

interface Session {
  token: string;
  csrfToken: string;
}

describe('dashboard sessions', () => {
  let t: TestApp;
  let org: TestOrg;
  let session: Session;
  let loginRes: LightMyRequestResponse;

  const login = (email: string, password: string) => t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  const sessionOf = (res: LightMyRequestResponse): Session => ({
    token: res.cookies.find((c) => c.name === 'vocelio_session')!.value,
    csrfToken: res.json<{ csrfToken: string }>().csrfToken,
  });
  const withCookie = (s: Session, opts: { method: 'GET' | 'POST'; url: string; payload?: object; csrf?: string }) =>
    t.app.inject({
      method: opts.method,
      url: opts.url,
      cookies: { vocelio_session: s.token },
      headers: opts.csrf === undefined ? {} : { 'x-csrf-token': opts.csrf },
      ...(opts.payload ? { payload: opts.payload } : {}),
    });
  const agentCount = async () => (await t.as(org.keys.owner, { method: 'GET', url: '/v1/agents?limit=100' })).json<{ data: unknown[] }>().data.length;
  const auditRowFor = async (res: LightMyRequestResponse) => {
    const [row] = await t.database.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id'] as string));
    return row;
  };

  beforeAll(async () => {
    t = await testApp();
    org = await t.createOrg();
    loginRes = await login(org.ownerEmail, org.ownerPassword);
    session = sessionOf(loginRes);
  });
  afterAll(() => t.close());

  describe('login', () => {
    it('answers the right password with 200, the user, organization, role and a csrfToken', () => {
      expect(loginRes.statusCode).toBe(200);
      expect(loginRes.json()).toMatchObject({
        user: { email: org.ownerEmail },
        organization: { id: org.id },
        role: 'owner',
        csrfToken: expect.stringMatching(/^[A-Za-z0-9_-]{20,}$/),
      });
    });

    it('sets the session in an httpOnly, SameSite=Lax, Secure vocelio_session cookie', () => {
      const cookie = loginRes.cookies.find((c) => c.name === 'vocelio_session');
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: true, path: '/' });
      expect(cookie!.value.length).toBeGreaterThanOrEqual(32);
    });

    it('accepts the email in any case', async () => {
      const res = await login(org.ownerEmail.toUpperCase(), org.ownerPassword);
      expect(res.statusCode).toBe(200);
    });

    it('answers a wrong password and an unknown email with the same 401 invalid_credentials body but for the request id', async () => {
      const wrongPassword = await login(org.ownerEmail, 'not-the-password');
      const unknownEmail = await login('nobody@example.test', org.ownerPassword);
      const withoutRequestId = (res: LightMyRequestResponse) => ({ ...expectError(res, 401, 'invalid_credentials'), requestId: undefined });
      expect(withoutRequestId(wrongPassword)).toEqual(withoutRequestId(unknownEmail));
    });

    it('sets no cookie on a failed login', async () => {
      const res = await login(org.ownerEmail, 'not-the-password');
      expect(res.cookies).toEqual([]);
    });

    it('records login.succeeded in the organization audit log', async () => {
      const log = await t.as(org.keys.owner, { method: 'GET', url: '/v1/audit-log?action=login.succeeded&limit=100' });
      const entry = log.json<{ data: { requestId: string }[] }>().data.find((e) => e.requestId === loginRes.headers['x-request-id']);
      expect(entry).toMatchObject({ action: 'login.succeeded', actorType: 'user', targetType: 'session' });
    });

    it.each([
      ['a wrong password', 'wrong_password', () => org.ownerEmail],
      ['an unknown email', 'unknown_email', () => 'nobody@example.test'],
    ])('records login.failed for %s, with the reason', async (_what, reason, email) => {
      const res = await login(email(), 'not-the-password');
      expect(await auditRowFor(res)).toMatchObject({ action: 'login.failed', metadata: { email: email(), reason } });
    });

    it("shows a wrong-password attempt in the user's organization audit log", async () => {
      const res = await login(org.ownerEmail, 'not-the-password');
      const log = await t.as(org.keys.admin, { method: 'GET', url: '/v1/audit-log?action=login.failed&limit=100' });
      const entry = log.json<{ data: { requestId: string }[] }>().data.find((e) => e.requestId === res.headers['x-request-id']);
      expect(entry).toMatchObject({ action: 'login.failed', metadata: { reason: 'wrong_password' } });
    });
  });

  describe('the session cookie', () => {
    it('authenticates GET /v1/agents on its own', async () => {
      const res = await withCookie(session, { method: 'GET', url: '/v1/agents' });
      expect(res.statusCode).toBe(200);
    });

    it('is refused a POST /v1/agents without X-CSRF-Token with 403 csrf_failed, creating nothing', async () => {
      const before = await agentCount();
      const res = await withCookie(session, { method: 'POST', url: '/v1/agents', payload: { name: 'Forged' } });
      expectError(res, 403, 'csrf_failed');
      expect(await agentCount()).toBe(before);
    });

    it("is refused a POST /v1/agents with another session's X-CSRF-Token, creating nothing", async () => {
      const other = sessionOf(await login(org.ownerEmail, org.ownerPassword));
      const before = await agentCount();
      const res = await withCookie(session, { method: 'POST', url: '/v1/agents', payload: { name: 'Forged' }, csrf: other.csrfToken });
      expectError(res, 403, 'csrf_failed');
      expect(await agentCount()).toBe(before);
    });

    it('creates an agent with the right X-CSRF-Token (201)', async () => {
      const res = await withCookie(session, { method: 'POST', url: '/v1/agents', payload: { name: 'From the dashboard' }, csrf: session.csrfToken });
      expect(res.statusCode, res.body).toBe(201);
    });

    it('answers 401 to a cookie that is not a session', async () => {
      const res = await withCookie({ token: 'forged-session-token', csrfToken: '' }, { method: 'GET', url: '/v1/agents' });
      expectError(res, 401, 'unauthorized');
    });
  });

  describe('logout', () => {
    it('ends the session: the cookie no longer authenticates', async () => {
      const s = sessionOf(await login(org.ownerEmail, org.ownerPassword));
      const out = await withCookie(s, { method: 'POST', url: '/auth/logout', csrf: s.csrfToken });
      expect(out.statusCode).toBe(204);

      expectError(await withCookie(s, { method: 'GET', url: '/v1/agents' }), 401, 'unauthorized');
    });

    it('clears the session cookie', async () => {
      const s = sessionOf(await login(org.ownerEmail, org.ownerPassword));
      const out = await withCookie(s, { method: 'POST', url: '/auth/logout', csrf: s.csrfToken });
      const cleared = out.cookies.find((c) => c.name === 'vocelio_session');
      expect(cleared?.value).toBe('');
      expect(cleared!.expires!.getTime()).toBeLessThan(Date.now());
    });

    it('is refused without X-CSRF-Token, and the session keeps working', async () => {
      const out = await withCookie(session, { method: 'POST', url: '/auth/logout' });
      expectError(out, 403, 'csrf_failed');
      expect((await withCookie(session, { method: 'GET', url: '/v1/agents' })).statusCode).toBe(200);
    });
  });
});
