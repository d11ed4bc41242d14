import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { IdParams, Page, errorResponses } from '../shared/schemas.js';
import { decodeCursor, toPage } from '../shared/pagination.js';
import { ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyListQuery } from './auth.schemas.js';

const KEY_ID = /^key_[0-9a-z]{26}$/;
const tags = ['api-keys'];

/** `/v1/api-keys`: admins list, create and revoke the organization's keys. */
export const apiKeyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('', {
    schema: { summary: 'List API keys', tags, querystring: ApiKeyListQuery, response: { 200: Page(ApiKey), ...errorResponses(400, 401, 403, 429) } },
    config: { access: { resource: 'api_keys', role: 'admin' } },
  }, async (req) => {
    const { limit, cursor, includeRevoked } = req.query;
    const rows = await app.apiKeys.list(req.auth!.organizationId, { limit: limit + 1, beforeId: decodeCursor(cursor, KEY_ID), includeRevoked });
    return toPage(rows, limit, (k) => k);
  });

  app.post('', {
    schema: {
      summary: 'Create an API key',
      description: 'The response holds the secret; it is never shown again. A key cannot have a higher role or more scopes than its creator.',
      tags,
      body: ApiKeyCreate,
      response: { 201: ApiKeyCreated, ...errorResponses(400, 401, 403, 413, 415, 429) },
    },
    config: { access: { resource: 'api_keys', role: 'admin' } },
  }, async (req, reply) => {
    const { key, secret } = await app.apiKeys.create(req.auth!, req.body, { ip: req.ip, requestId: req.id });
    return reply.code(201).send({ ...key, secret });
  });

  app.get('/:id', {
    schema: { summary: 'Get an API key', tags, params: IdParams('key'), response: { 200: ApiKey, ...errorResponses(400, 401, 403, 404, 429) } },
    config: { access: { resource: 'api_keys', role: 'admin' } },
  }, async (req) => app.apiKeys.get(req.auth!.organizationId, req.params.id));

  app.delete('/:id', {
    schema: { summary: 'Revoke an API key', description: 'Takes effect on the next request. Revoking twice is harmless.', tags, params: IdParams('key'), response: { 200: ApiKey, ...errorResponses(400, 401, 403, 404, 429) } },
    config: { access: { resource: 'api_keys', role: 'admin' } },
  }, async (req) => app.apiKeys.revoke(req.auth!, req.params.id, { ip: req.ip, requestId: req.id }));
};
