import { randomBytes } from 'node:crypto';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Role } from '../../src/organizations/organizations.table.js';
import type { TestApp } from './app.js';

/** A dashboard session as a browser holds it: the cookie token and the CSRF token from login. */
export interface TestSession {
  token: string;
  csrfToken: string;
}

/** A person who joined an organization through an invitation. */
export interface JoinedMember {
  memberId: string;
  userId: string;
  email: string;
  password: string;
  session: TestSession;
}

/** The session a login or an accepted invitation answered with. */
export function sessionOf(res: LightMyRequestResponse): TestSession {
  const cookie = res.cookies.find((c) => c.name === 'vocelio_session');
  if (!cookie) throw new Error(`no session cookie in ${res.statusCode} ${res.body}`);
  return { token: cookie.value, csrfToken: res.json<{ csrfToken: string }>().csrfToken };
}

/** `app.inject` with a session cookie, echoing its CSRF token as the dashboard does. */
export function asSession(t: TestApp, s: TestSession, opts: InjectOptions): Promise<LightMyRequestResponse> {
  return t.app.inject({ ...opts, cookies: { vocelio_session: s.token }, headers: { 'x-csrf-token': s.csrfToken, ...(opts.headers ?? {}) } });
}

/** Invites `email` with `inviterKey`; returns the invitation as the API answered it (with its one-time token). */
export async function invite(t: TestApp, inviterKey: string, email: string, role: Role): Promise<{ id: string; token: string; acceptUrl: string }> {
  const res = await t.as(inviterKey, { method: 'POST', url: '/v1/invitations', payload: { email, role } });
  if (res.statusCode !== 201) throw new Error(`invite ${email}: ${res.statusCode} ${res.body}`);
  return res.json();
}

let invitees = 0;
/**
 * Accepts an invitation as the invitee would. Each call comes from its own loopback address, as different
 * people would: accepting is rate-limited per address, and a test file accepts many invitations.
 */
export function accept(t: TestApp, token: string, password: string, name?: string): Promise<LightMyRequestResponse> {
  const n = ++invitees;
  return t.app.inject({
    method: 'POST',
    url: '/auth/invitations/accept',
    remoteAddress: `127.1.${(n >> 8) & 255}.${n & 255}`,
    payload: { token, password, ...(name ? { name } : {}) },
  });
}

/**
 * Adds someone the way the product does: an invitation from `inviterKey`, accepted by the invitee (a new
 * account with `password`, or an existing one that must give its own password).
 */
export async function addMember(
  t: TestApp,
  inviterKey: string,
  input: { email?: string; role: Role; password?: string },
): Promise<JoinedMember> {
  const email = input.email ?? `member-${randomBytes(4).toString('hex')}@example.test`;
  const password = input.password ?? `pw-${randomBytes(8).toString('hex')}`;
  const { token } = await invite(t, inviterKey, email, input.role);
  const res = await accept(t, token, password);
  if (res.statusCode !== 200) throw new Error(`accept ${email}: ${res.statusCode} ${res.body}`);
  const userId = res.json<{ user: { id: string } }>().user.id;
  const list = await t.as(inviterKey, { method: 'GET', url: '/v1/members?limit=100' });
  const member = list.json<{ data: { id: string; userId: string }[] }>().data.find((m) => m.userId === userId);
  if (!member) throw new Error(`${email} accepted but is not in the member list`);
  return { memberId: member.id, userId, email: email.toLowerCase(), password, session: sessionOf(res) };
}
