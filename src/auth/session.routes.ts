import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { AppError, unauthorized } from '../shared/errors.js';
import { errorResponses } from '../shared/schemas.js';
import { CSRF_COOKIE, SESSION_COOKIE, sameSecret } from '../plugins/auth.js';
import { normalizeEmail } from '../organizations/organizations.service.js';
import { LoginBody, SessionInfo } from './auth.schemas.js';
import type { LoginResult } from './sessions.service.js';

const tags = ['auth'];
// Brute-force guard: attempts per client address per minute.
const LOGIN_ATTEMPTS_PER_MINUTE = 20;

/**
 * Hands a new session to the browser (the httpOnly session cookie and the readable CSRF cookie) and returns
 * the body that login and an accepted invitation answer with.
 */
export function sendSession(reply: FastifyReply, result: LoginResult, secure: boolean) {
  const cookieOpts = { path: '/', sameSite: 'lax' as const, secure, expires: result.expiresAt };
  void reply.setCookie(SESSION_COOKIE, result.token, { ...cookieOpts, httpOnly: true });
  void reply.setCookie(CSRF_COOKIE, result.csrfToken, { ...cookieOpts, httpOnly: false });
  return { user: result.user, organization: result.organization, role: result.role, csrfToken: result.csrfToken, expiresAt: result.expiresAt.toISOString() };
}

/** `/auth`: dashboard login with email + password, a session cookie, logout. */
export const sessionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const secure = app.config.publicUrl.startsWith('https:');

  app.post('/login', {
    schema: {
      summary: 'Log in to the dashboard',
      description: `Sets the httpOnly ${SESSION_COOKIE} cookie. Cookie-authenticated changes must send the returned csrfToken as X-CSRF-Token.`,
      tags,
      body: LoginBody,
      response: { 200: SessionInfo, ...errorResponses(400, 401, 415, 429) },
    },
  }, async (req, reply) => {
    const limited = await app.rateLimiter.hit(`login:${req.ip}`, LOGIN_ATTEMPTS_PER_MINUTE, 60_000);
    if (!limited.allowed) {
      const retryAfterSeconds = Math.max(1, Math.ceil(limited.resetMs / 1000));
      throw new AppError('rate_limited', `too many login attempts; retry in ${retryAfterSeconds} s`, 429, { retryAfterSeconds });
    }
    // Per account, whatever the address: a throttled attempt is refused before the password is even
    // checked, and it does not count, so the right password works as soon as the short wait is over.
    const account = normalizeEmail(req.body.email);
    const throttle = await app.loginThrottle.attempt(account);
    if (!throttle.allowed) {
      const retryAfterSeconds = Math.max(1, Math.ceil(throttle.retryAfterMs / 1000));
      throw new AppError('login_throttled', `too many failed logins for this account; retry in ${retryAfterSeconds} s`, 429, { retryAfterSeconds });
    }
    const result = await app.sessions.login(req.body, { ip: req.ip, requestId: req.id });
    await app.loginThrottle.reset(account);
    return sendSession(reply, result, secure);
  });

  app.post('/logout', {
    schema: { summary: 'Log out', tags, response: { 204: Type.Null(), ...errorResponses(401, 403) } },
  }, async (req, reply) => {
    await app.authenticate(req);
    const principal = req.auth;
    if (!principal || principal.actor.type !== 'user') throw unauthorized('not logged in');
    if (!sameSecret(req.headers['x-csrf-token'], principal.csrfToken)) throw new AppError('csrf_failed', 'logout needs the X-CSRF-Token header', 403);
    await app.sessions.logout(principal, { ip: req.ip, requestId: req.id });
    void reply.clearCookie(SESSION_COOKIE, { path: '/' });
    void reply.clearCookie(CSRF_COOKIE, { path: '/' });
    return reply.code(204).send(null);
  });
};
