import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../shared/errors.js';
import { IdParams, Page, PageQuery, errorResponses } from '../shared/schemas.js';
import { decodeCursor, toPage } from '../shared/pagination.js';
import type { Principal } from '../auth/access.js';
import { SessionInfo } from '../auth/auth.schemas.js';
import { sendSession } from '../auth/session.routes.js';
import { Invitation, InvitationAccept, InvitationCreate, InvitationCreated, InvitationPreview, InvitationToken } from './invitations.schemas.js';
import type { Role } from './organizations.table.js';

const INVITATION_ID = /^inv_[0-9a-z]{26}$/;
const tags = ['members'];
// Brute-force guard on the unauthenticated invitation routes: attempts per client address per minute, as for login.
const ATTEMPTS_PER_MINUTE = 20;

/** The OpenAPI description shared by both routes that invite. */
export const INVITE_DESCRIPTION =
  'Creates a pending invitation and returns its one-time token and accept link, shown once: pass them to the person. ' +
  'They join when they accept (POST /auth/invitations/accept). The answer is the same whether or not the email already has an account.';

/** Invites someone and answers 201 with the invitation, its token and the accept link built from PUBLIC_URL. */
export async function invite(app: FastifyInstance, principal: Principal, body: { email: string; role: Role }, req: { ip: string; id: string }) {
  const { invitation, token } = await app.invitations.create(principal, body, { ip: req.ip, requestId: req.id });
  return { ...invitation, token, acceptUrl: `${app.config.publicUrl}/invitations/accept#token=${token}` };
}

/** `/v1/invitations`: admins invite people, list pending invitations and revoke them. */
export const invitationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('', {
    schema: {
      summary: 'Invite someone',
      description: INVITE_DESCRIPTION,
      tags,
      body: InvitationCreate,
      response: { 201: InvitationCreated, ...errorResponses(400, 401, 403, 409, 413, 415, 429) },
    },
    config: { access: { resource: 'members', role: 'admin' } },
  }, async (req, reply) => reply.code(201).send(await invite(app, req.auth!, req.body, req)));

  app.get('', {
    schema: { summary: 'List pending invitations', tags, querystring: PageQuery, response: { 200: Page(Invitation), ...errorResponses(400, 401, 403, 429) } },
    config: { access: { resource: 'members', role: 'admin' } },
  }, async (req) => {
    const { limit, cursor } = req.query;
    const rows = await app.invitations.listPending(req.auth!.organizationId, { limit: limit + 1, beforeId: decodeCursor(cursor, INVITATION_ID) });
    return toPage(rows, limit, (i) => i);
  });

  app.delete('/:id', {
    schema: {
      summary: 'Revoke an invitation',
      description: 'Its link stops working at once. Revoking twice is harmless; an accepted invitation cannot be revoked (remove the member).',
      tags,
      params: IdParams('inv'),
      response: { 200: Invitation, ...errorResponses(400, 401, 403, 404, 409, 429) },
    },
    config: { access: { resource: 'members', role: 'admin' } },
  }, async (req) => app.invitations.revoke(req.auth!, req.params.id, { ip: req.ip, requestId: req.id }));
};

/**
 * `/auth/invitations`: what the invitee does, without an account in the organization yet. The token travels
 * in the body, never the URL, so it stays out of access logs.
 */
export const invitationAcceptRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const secure = app.config.publicUrl.startsWith('https:');
  const limit = async (ip: string) => {
    const r = await app.rateLimiter.hit(`invitation:${ip}`, ATTEMPTS_PER_MINUTE, 60_000);
    if (!r.allowed) {
      const retryAfterSeconds = Math.max(1, Math.ceil(r.resetMs / 1000));
      throw new AppError('rate_limited', `too many invitation attempts; retry in ${retryAfterSeconds} s`, 429, { retryAfterSeconds });
    }
  };

  app.post('/preview', {
    schema: {
      summary: 'Show an invitation',
      description: 'The organization, email, role and expiry an invitation token stands for.',
      tags: ['auth'],
      body: InvitationToken,
      response: { 200: InvitationPreview, ...errorResponses(400, 403, 404, 410, 415, 429) },
    },
  }, async (req) => {
    await limit(req.ip);
    return app.invitations.preview(req.body.token);
  });

  app.post('/accept', {
    schema: {
      summary: 'Accept an invitation',
      description:
        'A new email gets an account with this password (at least 12 characters); an existing account must give its own password. ' +
        `Then the person is a member and logged in, as with /auth/login. After 5 wrong passwords the invitation is void.`,
      tags: ['auth'],
      body: InvitationAccept,
      response: { 200: SessionInfo, ...errorResponses(400, 401, 403, 404, 409, 410, 415, 429) },
    },
  }, async (req, reply) => {
    await limit(req.ip);
    const meta = { ip: req.ip, requestId: req.id };
    const joined = await app.invitations.accept(req.body, meta);
    return sendSession(reply, await app.sessions.open(joined, meta), secure);
  });
};
