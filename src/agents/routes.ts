import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { IdParams, Page, PageQuery, errorResponses } from '../shared/schemas.js';
import { decodeCursor, toPage } from '../shared/pagination.js';
import { Agent, AgentCreate, AgentUpdate } from './agents.schemas.js';

const AGENT_ID = /^agt_[0-9a-z]{26}$/;
const tags = ['agents'];

/** `/v1/agents`: CRUD over the organization's agents. */
export const agentRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('', {
    schema: { summary: 'List agents', tags, querystring: PageQuery, response: { 200: Page(Agent), ...errorResponses(400, 401, 403, 429) } },
    config: { access: { resource: 'agents', role: 'viewer' } },
  }, async (req) => {
    const { limit, cursor } = req.query;
    const rows = await app.agents.list(req.auth!.organizationId, { limit: limit + 1, beforeId: decodeCursor(cursor, AGENT_ID) });
    return toPage(rows, limit, (a) => a);
  });

  app.post('', {
    schema: { summary: 'Create an agent', tags, body: AgentCreate, response: { 201: Agent, ...errorResponses(400, 401, 403, 413, 415, 429) } },
    config: { access: { resource: 'agents', role: 'member' } },
  }, async (req, reply) => {
    const agent = await app.agents.create(req.auth!.organizationId, req.body);
    return reply.code(201).send(agent);
  });

  app.get('/:id', {
    schema: { summary: 'Get an agent', tags, params: IdParams('agt'), response: { 200: Agent, ...errorResponses(400, 401, 403, 404, 429) } },
    config: { access: { resource: 'agents', role: 'viewer' } },
  }, async (req) => app.agents.get(req.auth!.organizationId, req.params.id));

  app.patch('/:id', {
    schema: { summary: 'Update an agent', tags, params: IdParams('agt'), body: AgentUpdate, response: { 200: Agent, ...errorResponses(400, 401, 403, 404, 413, 415, 429) } },
    config: { access: { resource: 'agents', role: 'member' } },
  }, async (req) => app.agents.update(req.auth!.organizationId, req.params.id, req.body));

  app.delete('/:id', {
    schema: { summary: 'Delete an agent', tags, params: IdParams('agt'), response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404, 429) } },
    config: { access: { resource: 'agents', role: 'member' } },
  }, async (req, reply) => {
    await app.agents.delete(req.auth!.organizationId, req.params.id);
    return reply.code(204).send(null);
  });
};
