import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { IdParams, Page, PageQuery, errorResponses } from '../shared/schemas.js';
import { decodeCursor, toPage } from '../shared/pagination.js';
import { Me, Member, MemberUpdate } from './organizations.schemas.js';
import { InvitationCreate, InvitationCreated } from './invitations.schemas.js';
import { INVITE_DESCRIPTION, invite } from './invitations.routes.js';

const MEMBER_ID = /^mem_[0-9a-z]{26}$/;

/** `/v1/me`: the caller's organization, role and scopes. */
export const meRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('', {
    schema: { summary: 'Who am I', tags: ['organization'], response: { 200: Me, ...errorResponses(401, 429) } },
    config: { access: { role: 'viewer' } },
  }, async (req) => {
    const p = req.auth!;
    return { organization: await app.organizations.get(p.organizationId), role: p.role, scopes: [...p.scopes], actor: { type: p.actor.type, id: p.actor.id } };
  });
};

/** `/v1/members`: everyone reads the member list; admins invite, change and remove members. */
export const memberRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['members'];
  const meta = (req: { ip: string; id: string }) => ({ ip: req.ip, requestId: req.id });

  app.get('', {
    schema: { summary: 'List members', tags, querystring: PageQuery, response: { 200: Page(Member), ...errorResponses(400, 401, 403, 429) } },
    config: { access: { resource: 'members', role: 'viewer' } },
  }, async (req) => {
    const { limit, cursor } = req.query;
    const rows = await app.organizations.listMembers(req.auth!.organizationId, { limit: limit + 1, afterId: decodeCursor(cursor, MEMBER_ID) });
    return toPage(rows, limit, (m) => m);
  });

  // Kept so that existing clients reach the invitation flow rather than a 404; nobody becomes a member here.
  app.post('', {
    schema: {
      summary: 'Invite a member (same as POST /v1/invitations)',
      description: INVITE_DESCRIPTION,
      tags,
      deprecated: true,
      body: InvitationCreate,
      response: { 201: InvitationCreated, ...errorResponses(400, 401, 403, 409, 413, 415, 429) },
    },
    config: { access: { resource: 'members', role: 'admin' } },
  }, async (req, reply) => reply.code(201).send(await invite(app, req.auth!, req.body, req)));

  app.patch('/:id', {
    schema: { summary: "Change a member's role", tags, params: IdParams('mem'), body: MemberUpdate, response: { 200: Member, ...errorResponses(400, 401, 403, 404, 409, 429) } },
    config: { access: { resource: 'members', role: 'admin' } },
  }, async (req) => app.organizations.changeRole(req.auth!, req.params.id, req.body.role, meta(req)));

  app.delete('/:id', {
    schema: { summary: 'Remove a member', tags, params: IdParams('mem'), response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404, 409, 429) } },
    config: { access: { resource: 'members', role: 'admin' } },
  }, async (req, reply) => {
    await app.organizations.removeMember(req.auth!, req.params.id, meta(req));
    return reply.code(204).send(null);
  });
};
