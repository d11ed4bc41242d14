import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { IdString, errorResponses } from '../shared/schemas.js';
import { invalid, notFound } from '../shared/errors.js';
import { EVENT_TYPE_DOCS, isTypePattern } from './event-types.js';

const MAX_PATTERNS = 20;

const StreamQuery = Type.Object(
  {
    callId: Type.Optional(IdString('call', "only this call's events")),
    types: Type.Optional(Type.String({ maxLength: 1000, description: 'comma-separated types or patterns, e.g. `call.transcript,call.agent_state` or `call.*`' })),
    lastEventId: Type.Optional(IdString('evt', 'replay the durable events after this one (the `Last-Event-ID` header wins when both are sent)')),
  },
  { additionalProperties: false },
);

const StreamHeaders = Type.Object({
  'last-event-id': Type.Optional(IdString('evt', 'sent by EventSource on reconnect: replay the durable events after this one')),
});

const durableList = Object.entries(EVENT_TYPE_DOCS)
  .map(([type, doc]) => `\`${type}\` (${doc})`)
  .join('; ');

const description = [
  'A Server-Sent Events stream (`text/event-stream`) of your organization\'s call events. Each message has `event: <type>` and',
  '`data: {"id","type","subject","at","data"}` where `subject` is the call id and `data` the type\'s fields.',
  `**Durable events** are stored and carry their \`evt_\` id (also the SSE \`id\`): ${durableList}.`,
  'Reconnect with `Last-Event-ID` (EventSource does it for you) to get every durable event you missed, in order; an id that cannot be',
  'replayed (unknown, or older than the retention) gets a `replay_unavailable` message.',
  '**Live events** are not stored and carry no id: `call.speech_started` (`streamMs`), `call.speech_stopped` (`streamMs`, `durationMs`),',
  '`call.transcript` (`role`, `text`, `final`: interim caller words are `final: false`; `interrupted` when the caller cut the agent off),',
  '`call.agent_state` (`state`: `listening`, `thinking`, `speaking`), `call.tool` (`name`, `ok`, `ms`), `call.interrupted` (`heardText`),',
  '`call.dtmf` (`digit`), `call.status` (the carrier\'s `status`), `call.answered_by` (`answeredBy`), `call.ended` (`reason`, as the media',
  'session saw it). Filter with `callId` and `types` (patterns like `call.*`). A comment line (`: heartbeat`) keeps an idle stream',
  'open (every 15 s by default). A client that stops reading is disconnected once a limit of unsent bytes (1 MiB by default) waits',
  'for it, rather than buffered without bound: reconnect with `Last-Event-ID`. Too many open streams for one organization: 429.',
].join(' ');

/** `GET /v1/events/stream`: the organization's live and durable events as Server-Sent Events. */
export const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/stream', {
    schema: {
      summary: 'Stream call events (Server-Sent Events)',
      description,
      tags: ['events'],
      querystring: StreamQuery,
      headers: StreamHeaders,
      response: {
        200: { description: 'the event stream; it stays open until either side closes it', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        ...errorResponses(404, 429),
      },
    },
    config: { access: { resource: 'calls', role: 'viewer' } },
    // A HEAD would open a stream only to throw it away.
    exposeHeadRoute: false,
  }, async (req, reply) => {
    const organizationId = req.auth!.organizationId;
    const { callId, types } = req.query;
    const patterns = types === undefined ? undefined : types.split(',').map((p) => p.trim()).filter((p) => p !== '');
    if (patterns !== undefined) {
      const bad = patterns.find((p) => !isTypePattern(p));
      if (patterns.length === 0 || bad !== undefined) throw invalid(`types must list event types or patterns like call.* (got "${bad ?? types}")`, { field: 'types' });
      if (patterns.length > MAX_PATTERNS) throw invalid(`types may list at most ${MAX_PATTERNS} patterns`, { field: 'types' });
    }
    // A call of another organization is as unknown as one that does not exist.
    if (callId !== undefined) {
      const call = await app.calls.get(organizationId, callId);
      if (call.deletedAt) throw notFound('call', callId);
    }
    const slot = app.eventStreams.reserve(organizationId);
    // From here on the response is ours to write: fastify sends nothing more for this request.
    reply.hijack();
    const headers = { ...(reply.getHeaders() as Record<string, string | number | string[]>), 'x-request-id': req.id };
    try {
      await app.eventStreams.serve(slot, reply.raw, headers, { callId, types: patterns }, req.headers['last-event-id'] ?? req.query.lastEventId);
    } catch (err) {
      slot.release();
      req.log.error({ err }, 'event stream failed');
      reply.raw.destroy();
    }
  });
};
