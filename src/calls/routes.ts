import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { IdParams, IdString, Timestamp, errorResponses } from '../shared/schemas.js';
import { STREAM_TOKEN_TTL_MS } from './calls.service.js';
import { OPTIONAL_BODY } from '../plugins/swagger.js';

const TestCall = Type.Object({
  callId: IdString('call'),
  streamUrl: Type.String({ description: 'the Media Streams WebSocket URL, as Twilio would open it' }),
  token: Type.String({ description: 'single-use stream token: send it as start.customParameters.token' }),
  expiresAt: Timestamp,
});

const TestCallBody = Type.Object(
  {
    variables: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' }), Type.String({ maxLength: 2000 }), {
        maxProperties: 100,
        additionalProperties: false,
        description: "values for the agent's {{variables}} on this call, over the agent's defaults",
      }),
    ),
  },
  { additionalProperties: false },
);

/**
 * `POST /v1/agents/:id/test-calls`: a call with no phone network, for the simulator (`vocelio simulate`)
 * and for trying an agent out. The caller then speaks Twilio's Media Streams protocol itself.
 */
export const testCallRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/:id/test-calls', {
    schema: {
      summary: 'Start a test call to an agent over the Media Streams socket',
      description: 'The body is optional: a bare POST starts a call with the agent\'s own variables.',
      tags: ['calls'],
      params: IdParams('agt'),
      body: TestCallBody,
      [OPTIONAL_BODY]: true,
      response: { 201: TestCall, ...errorResponses(400, 401, 403, 404, 429) },
    },
    config: { access: { resource: 'calls', role: 'member' } },
    // The body is optional: a bare POST (no content) means no per-call variables.
    preValidation: async (req) => {
      req.body ??= {};
    },
  }, async (req, reply) => {
    const { organizationId } = req.auth!;
    const agent = await app.agents.get(organizationId, req.params.id);
    const call = await app.calls.create(organizationId, { agentId: agent.id, direction: 'inbound', fromNumber: 'simulator', toNumber: 'simulator', variables: req.body.variables });
    const token = await app.calls.issueStreamToken(call);
    // Twilio (here: the simulator) connects within a second or two; the STT handshake happens meanwhile.
    app.sttPrewarm.open(call.id, agent);
    const streamUrl = `${app.config.publicUrl.replace(/^http/, 'ws')}/twilio/media`;
    return reply.code(201).send({ callId: call.id, streamUrl, token, expiresAt: new Date(Date.now() + STREAM_TOKEN_TTL_MS).toISOString() });
  });
};
