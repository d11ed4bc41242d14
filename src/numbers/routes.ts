import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { E164String, IdParams, IdString, NullableIdString, Page, PageQuery, Timestamp, errorResponses } from '../shared/schemas.js';
import { decodeCursor, toPage } from '../shared/pagination.js';
import type { PhoneNumberRow } from './numbers.table.js';

const NUMBER_ID = /^pn_[0-9a-z]{26}$/;
const tags = ['phone-numbers'];
const E164 = E164String();
const Capabilities = Type.Object({ voice: Type.Boolean(), sms: Type.Boolean(), mms: Type.Boolean(), fax: Type.Boolean() });

const PhoneNumber = Type.Object({
  id: IdString('pn'),
  phoneNumber: E164,
  friendlyName: Type.String(),
  provider: Type.String(),
  providerSid: Type.String(),
  agentId: NullableIdString('agt', 'the agent that answers calls to this number'),
  capabilities: Capabilities,
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

const AvailableNumber = Type.Object({
  phoneNumber: E164,
  friendlyName: Type.String(),
  isoCountry: Type.String(),
  locality: Type.Union([Type.String(), Type.Null()]),
  region: Type.Union([Type.String(), Type.Null()]),
  postalCode: Type.Union([Type.String(), Type.Null()]),
  capabilities: Capabilities,
});

const SearchQuery = Type.Object(
  {
    country: Type.String({ pattern: '^[A-Z]{2}$', default: 'US', description: 'ISO 3166-1 alpha-2' }),
    areaCode: Type.Optional(Type.String({ pattern: '^[0-9]{3}$' })),
    contains: Type.Optional(Type.String({ pattern: '^[0-9A-Za-z*]{1,16}$', description: 'digits or letters the number must contain; * matches any digit' })),
    limit: Type.Integer({ minimum: 1, maximum: 50, default: 20 }),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object({ ...PageQuery.properties, agentId: Type.Optional(IdString('agt')) }, { additionalProperties: false });

const AgentRef = NullableIdString('agt', 'the agent that answers; null for none');
const FriendlyName = Type.String({ maxLength: 64 });

const BuyBody = Type.Object({ phoneNumber: E164, agentId: Type.Optional(AgentRef), friendlyName: Type.Optional(FriendlyName) }, { additionalProperties: false });
const ImportBody = Type.Object(
  { providerSid: Type.String({ pattern: '^PN[0-9a-fA-F]{32}$', description: "the number's Twilio SID (PN...)" }), agentId: Type.Optional(AgentRef), friendlyName: Type.Optional(FriendlyName) },
  { additionalProperties: false },
);
const UpdateBody = Type.Object({ agentId: Type.Optional(AgentRef), friendlyName: Type.Optional(FriendlyName) }, { additionalProperties: false, minProperties: 1 });

const present = (n: PhoneNumberRow) => ({
  id: n.id,
  phoneNumber: n.phoneNumber,
  friendlyName: n.friendlyName,
  provider: n.provider,
  providerSid: n.providerSid,
  agentId: n.agentId,
  capabilities: n.capabilities,
  createdAt: n.createdAt.toISOString(),
  updatedAt: n.updatedAt.toISOString(),
});

/** `/v1/phone-numbers`: search the carrier, buy or import numbers, assign them to agents, release them. */
export const numberRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/available', {
    schema: { summary: 'Search numbers for sale', tags, querystring: SearchQuery, response: { 200: Type.Object({ data: Type.Array(AvailableNumber) }), ...errorResponses(400, 401, 403, 422, 429, 502, 503) } },
    config: { access: { resource: 'phone_numbers', role: 'member' } },
  }, async (req) => ({ data: await app.numbers.search(req.query) }));

  app.get('', {
    schema: { summary: 'List phone numbers', tags, querystring: ListQuery, response: { 200: Page(PhoneNumber), ...errorResponses(400, 401, 403, 429) } },
    config: { access: { resource: 'phone_numbers', role: 'viewer' } },
  }, async (req) => {
    const { limit, cursor, agentId } = req.query;
    const rows = await app.numbers.list(req.auth!.organizationId, { limit: limit + 1, beforeId: decodeCursor(cursor, NUMBER_ID), agentId });
    return toPage(rows, limit, present);
  });

  app.post('', {
    schema: { summary: 'Buy a phone number', description: 'Buys the number at the carrier and points its voice and status webhooks at this server.', tags, body: BuyBody, response: { 201: PhoneNumber, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 422, 429, 502, 503) } },
    config: { access: { resource: 'phone_numbers', role: 'admin' } },
  }, async (req, reply) => reply.code(201).send(present(await app.numbers.buy(req.auth!.organizationId, req.body))));

  app.post('/import', {
    schema: { summary: 'Import a number the Twilio account already owns', tags, body: ImportBody, response: { 201: PhoneNumber, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 422, 429, 502, 503) } },
    config: { access: { resource: 'phone_numbers', role: 'admin' } },
  }, async (req, reply) => reply.code(201).send(present(await app.numbers.import(req.auth!.organizationId, req.body))));

  app.get('/:id', {
    schema: { summary: 'Get a phone number', tags, params: IdParams('pn'), response: { 200: PhoneNumber, ...errorResponses(400, 401, 403, 404, 429) } },
    config: { access: { resource: 'phone_numbers', role: 'viewer' } },
  }, async (req) => present(await app.numbers.get(req.auth!.organizationId, req.params.id)));

  app.patch('/:id', {
    schema: { summary: 'Assign a number to an agent, or rename it', tags, params: IdParams('pn'), body: UpdateBody, response: { 200: PhoneNumber, ...errorResponses(400, 401, 403, 404, 413, 415, 429) } },
    config: { access: { resource: 'phone_numbers', role: 'member' } },
  }, async (req) => present(await app.numbers.update(req.auth!.organizationId, req.params.id, req.body)));

  app.delete('/:id', {
    schema: { summary: 'Release a phone number', description: 'Releases the number at the carrier; calls to it then fail. Call records keep it.', tags, params: IdParams('pn'), response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404, 429, 502, 503) } },
    config: { access: { resource: 'phone_numbers', role: 'admin' } },
  }, async (req, reply) => {
    await app.numbers.release(req.auth!.organizationId, req.params.id);
    return reply.code(204).send(null);
  });
};
