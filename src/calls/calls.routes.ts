import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { IdParams, Page, errorResponses } from '../shared/schemas.js';
import { decodeCursor, toPage } from '../shared/pagination.js';
import { invalid, notFound } from '../shared/errors.js';
import { Call, CallCreate, CallDetail, CallListQuery, presentCall, presentCallDetail } from './calls.schemas.js';

const CALL_ID = /^call_[0-9a-z]{26}$/;
const tags = ['calls'];
// Stripe's rule: any printable key up to 255 characters, unique per organization.
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** `/v1/calls`: place outbound calls, list and read call records with transcripts, hang up, delete. */
export const callRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('', {
    schema: {
      summary: 'Place an outbound call',
      description: 'Send `Idempotency-Key` to make retries safe: a repeated key returns the first call (200, `Idempotent-Replayed: true`) instead of placing another.',
      tags,
      body: CallCreate,
      headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ maxLength: 255 })) }),
      response: { 200: Call, 201: Call, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 422, 429, 502, 503) },
    },
    config: { access: { resource: 'calls', role: 'member' } },
  }, async (req, reply) => {
    const key = req.headers['idempotency-key'];
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) throw invalid('Idempotency-Key must be 1-255 printable ASCII characters', { field: 'Idempotency-Key' });
    const { call, replayed } = await app.callControl.place(req.auth!.organizationId, { ...req.body, idempotencyKey: key });
    if (replayed) void reply.header('idempotent-replayed', 'true');
    return reply.code(replayed ? 200 : 201).send(presentCall(call));
  });

  app.get('', {
    schema: { summary: 'List calls', tags, querystring: CallListQuery, response: { 200: Page(Call), ...errorResponses(400, 401, 403, 429) } },
    config: { access: { resource: 'calls', role: 'viewer' } },
  }, async (req) => {
    const q = req.query;
    const rows = await app.calls.list(req.auth!.organizationId, {
      limit: q.limit + 1,
      beforeId: decodeCursor(q.cursor, CALL_ID),
      status: q.status,
      direction: q.direction,
      agentId: q.agentId,
      campaignId: q.campaignId,
      phoneNumberId: q.phoneNumberId,
      createdAfter: q.createdAfter ? new Date(q.createdAfter) : undefined,
      createdBefore: q.createdBefore ? new Date(q.createdBefore) : undefined,
    });
    return toPage(rows, q.limit, presentCall);
  });

  app.get('/:id', {
    schema: { summary: 'Get a call with its transcript, latencies, usage and recording link', tags, params: IdParams('call'), response: { 200: CallDetail, ...errorResponses(400, 401, 403, 404, 429) } },
    config: { access: { resource: 'calls', role: 'viewer' } },
  }, async (req) => {
    const org = req.auth!.organizationId;
    const call = await app.calls.get(org, req.params.id);
    if (call.deletedAt) throw notFound('call', call.id);
    const [turns, usage] = await Promise.all([app.callTurns.list(org, call.id), app.usage.forCall(org, call.id)]);
    return presentCallDetail(call, turns, usage);
  });

  app.post('/:id/hangup', {
    schema: { summary: 'Hang up a live call', tags, params: IdParams('call'), response: { 200: Call, ...errorResponses(400, 401, 403, 404, 409, 429, 502, 503) } },
    config: { access: { resource: 'calls', role: 'member' } },
  }, async (req) => presentCall(await app.callControl.hangUp(req.auth!.organizationId, req.params.id)));

  app.delete('/:id', {
    schema: {
      summary: 'Delete a call',
      description: 'Deletes the transcript and the recording; a tombstone (ids, times, duration, usage) stays for billing.',
      tags,
      params: IdParams('call'),
      response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404, 409, 429) },
    },
    config: { access: { resource: 'calls', role: 'admin' } },
  }, async (req, reply) => {
    const org = req.auth!.organizationId;
    const call = await app.calls.get(org, req.params.id);
    if (!call.endedAt) throw invalid('a live call cannot be deleted: hang it up first');
    const { recordingKey } = await app.calls.softDelete(org, req.params.id);
    if (recordingKey) await app.recordings.remove(recordingKey);
    return reply.code(204).send(null);
  });
};
