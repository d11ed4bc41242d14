import fp from 'fastify-plugin';
import cookie from '@fastify/cookie';
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, forbidden, unauthorized } from '../shared/errors.js';
import { denyReason, type Access, type Principal } from '../auth/access.js';

/** Name of the dashboard session cookie (httpOnly). */
export const SESSION_COOKIE = 'vocelio_session';
/** Name of the readable cookie holding the CSRF token the dashboard echoes in `X-CSRF-Token`. */
export const CSRF_COOKIE = 'vocelio_csrf';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; set by the /v1 guard before any handler runs. */
    auth: Principal | null;
    /** Why authentication failed, for the 401 message. */
    authFailure: string | null;
  }
  interface FastifyContextConfig {
    /** What a /v1 route needs; every /v1 route must declare it. */
    access?: Access;
    /** Routes that never count against the per-key rate limit. */
    skipRateLimit?: boolean;
  }
  interface FastifyInstance {
    /** Resolves the request's API key or session cookie into `req.auth` (or `req.authFailure`). */
    authenticate(req: FastifyRequest): Promise<void>;
  }
}

const KEY_REJECTIONS: Record<string, string> = {
  unknown: 'API key is not valid',
  revoked: 'API key has been revoked',
  expired: 'API key has expired',
  organization_suspended: 'organization is suspended',
};

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Constant-time equality for a presented token (absent or repeated headers never match). */
export function sameSecret(a: string | string[] | undefined, b: string | undefined): boolean {
  if (typeof a !== 'string' || b === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** App-wide: cookie parsing and the `authenticate` resolver. */
export const authPlugin = fp(
  async (app) => {
    await app.register(cookie);
    app.decorateRequest('auth', null);
    app.decorateRequest('authFailure', null);
    app.decorate('authenticate', async (req: FastifyRequest) => {
      const header = req.headers.authorization;
      if (header !== undefined) {
        const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
        if (!m) {
          req.authFailure = 'Authorization header must be "Bearer <api key>"';
          return;
        }
        const result = await app.apiKeys.authenticate(m[1]!);
        if (result.ok) req.auth = result.principal;
        else req.authFailure = KEY_REJECTIONS[result.reason] ?? 'API key is not valid';
        return;
      }
      const token = req.cookies[SESSION_COOKIE];
      if (token) {
        req.auth = await app.sessions.authenticate(token);
        if (!req.auth) req.authFailure = 'session has expired; log in again';
        return;
      }
      req.authFailure = 'authentication required: send "Authorization: Bearer <api key>"';
    });
  },
  { name: 'auth', dependencies: ['auth-services', 'rate-limit'] },
);

/**
 * Guards one route scope (everything under /v1): authenticate, count against the rate limit, then
 * check role, scope and CSRF, all before the body is even parsed. Routes without `config.access` are
 * refused at start-up, so no route can forget authorization.
 */
export const v1GuardPlugin = fp(
  async (app, opts: { rateLimitPerMinute: number }) => {
    app.addHook('onRoute', (route) => {
      if (!route.config?.access) throw new Error(`route ${String(route.method)} ${route.url} has no config.access`);
    });

    app.addHook('onRequest', async (req: FastifyRequest) => {
      await app.authenticate(req);
    });

    app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (req.routeOptions.config.skipRateLimit) return;
      const key = req.auth ? `${req.auth.actor.type}:${req.auth.actor.id}` : `ip:${req.ip}`;
      const r = await app.rateLimiter.hit(key, opts.rateLimitPerMinute, 60_000);
      void reply.header('x-ratelimit-limit', r.limit);
      void reply.header('x-ratelimit-remaining', r.remaining);
      void reply.header('x-ratelimit-reset', Math.ceil(r.resetMs / 1000));
      if (!r.allowed) {
        const retryAfterSeconds = Math.max(1, Math.ceil(r.resetMs / 1000));
        throw new AppError('rate_limited', `rate limit of ${r.limit} requests per minute exceeded; retry in ${retryAfterSeconds} s`, 429, { retryAfterSeconds });
      }
    });

    app.addHook('onRequest', async (req: FastifyRequest) => {
      const principal = req.auth;
      if (!principal) throw unauthorized(req.authFailure ?? undefined);
      const access = req.routeOptions.config.access!;
      const reason = denyReason(principal, access);
      if (reason) {
        await app.audit.record({
          organizationId: principal.organizationId,
          actor: principal.actor,
          action: 'permission.denied',
          ip: req.ip,
          requestId: req.id,
          metadata: { method: req.method, route: req.routeOptions.url, needs: access, role: principal.role },
        });
        throw forbidden(reason);
      }
      if (principal.csrfToken !== undefined && UNSAFE_METHODS.has(req.method)) {
        if (!sameSecret(req.headers['x-csrf-token'], principal.csrfToken)) {
          throw new AppError('csrf_failed', 'cookie-authenticated changes need the X-CSRF-Token header from login', 403);
        }
      }
    });
  },
  { name: 'v1-guard', dependencies: ['auth'] },
);
