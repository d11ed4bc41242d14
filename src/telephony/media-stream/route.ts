import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { Counter, Gauge } from 'prom-client';
import type { WebSocket } from 'ws';
import { SecretKeyError } from '../../shared/secret-box.js';
import type { CallSession } from '../call-session.js';
import type { ErrorBody } from '../../plugins/errors.js';
import { encodeTwilioMessage, parseTwilioMessage, ProtocolError, type StartMessage, type TwilioInbound } from './twilio-protocol.js';
import { PendingSockets, type ReleaseSlot } from './pending-sockets.js';

// Closing codes (RFC 6455): 1008 policy violation for refused streams, 1011 for our own failures.
const POLICY_VIOLATION = 1008;
const INTERNAL_ERROR = 1011;
// A peer that keeps sending garbage is not Twilio; one bad message is tolerated, a stream of them is not.
const MAX_PROTOCOL_ERRORS = 20;
// Frames arriving while the start message is still being checked (a DB round trip) wait here.
const MAX_EARLY_FRAMES = 100;

/** `GET /twilio/media`: Twilio's bidirectional Media Streams socket, one call per connection. */
export async function mediaStreamRoutes(app: FastifyInstance): Promise<void> {
  const { startTimeoutMs, maxPending, maxPendingPerAddress } = app.config.mediaStream;
  const pending = new PendingSockets(maxPending, maxPendingPerAddress);
  const slots = new WeakMap<IncomingMessage, ReleaseSlot>();
  new Gauge({ name: 'vocelio_media_sockets_pending', help: 'media sockets waiting for an accepted start', registers: [app.metrics], collect() { this.set(pending.size); } });
  const refused = new Counter({ name: 'vocelio_media_sockets_refused_total', help: 'media sockets refused before the upgrade because too many were waiting for start', registers: [app.metrics] });

  // Before the upgrade: a socket that has not yet shown an accepted `start` holds a slot, so idle or
  // unauthenticated sockets cannot pile up. Refused here, the client gets a plain HTTP 503, not a socket.
  const admit = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!req.ws) return;
    const release = pending.reserve(req.ip);
    if (!release) {
      refused.inc();
      req.log.warn({ ip: req.ip, pending: pending.size }, 'media stream refused: too many sockets waiting for start');
      const body: ErrorBody = { error: { code: 'too_many_pending_streams', message: 'too many media streams are waiting to start; retry shortly', details: { retryAfterSeconds: 1 }, requestId: req.id } };
      return reply.code(503).header('retry-after', '1').send(body);
    }
    slots.set(req.raw, release);
    // Released when the socket goes live or closes, whichever is first; also if the upgrade never happens.
    req.raw.socket?.once('close', release);
  };

  app.get('/twilio/media', { websocket: true, schema: { hide: true }, onRequest: admit }, (socket: WebSocket, req) => {
    const log = req.log.child({ stream: 'twilio-media' });
    let state: 'waiting' | 'starting' | 'live' | 'closed' = 'waiting';
    let session: CallSession | null = null;
    let protocolErrors = 0;
    const early: TwilioInbound[] = [];
    const releaseSlot = slots.get(req.raw) ?? (() => {});
    // Twilio sends `start` right after connecting; a socket that does not is not Twilio.
    const startTimer = setTimeout(() => {
      if (state === 'waiting') refuse(`no start within ${startTimeoutMs} ms`);
    }, startTimeoutMs);

    const refuse = (reason: string, detail: Record<string, unknown> = {}) => {
      log.warn({ ...detail, reason }, 'media stream refused');
      state = 'closed';
      clearTimeout(startTimer);
      socket.close(POLICY_VIOLATION, reason);
    };

    const dispatch = (msg: TwilioInbound) => {
      if (!session) return;
      switch (msg.event) {
        case 'media':
          session.onMedia(msg.media.payload);
          break;
        case 'dtmf':
          session.onDtmf(msg.dtmf.digit);
          break;
        case 'mark':
          session.onMark(msg.mark.name);
          break;
        case 'stop':
          void session.end('stream_stopped');
          break;
        case 'connected':
        case 'start':
          protocolErrors++;
          break;
        default: {
          const never: never = msg;
          throw new Error(`unhandled ${JSON.stringify(never)}`);
        }
      }
    };

    const begin = async (msg: StartMessage) => {
      state = 'starting';
      const token = msg.start.customParameters.token;
      const spent = await app.calls.consumeStreamToken(token);
      if (!spent.ok) return refuse(`stream token ${spent.reason}`, { callSid: msg.start.callSid });
      // Read before claiming: the claim writes the start's call sid, and a carrier leg is one whose sid the
      // webhook or the outbound API knew before the stream began.
      const call = await app.calls.get(spent.organizationId, spent.callId);
      const carrierLeg = call.providerCallSid !== null && (call.direction === 'outbound' || call.phoneNumberId !== null);
      // A second valid token for the call (a retried or replayed webhook) must not start a second session:
      // refusing leaves the live call, its record and its session untouched.
      const claim = await app.callLifecycle.claimMedia(call.id, { streamSid: msg.start.streamSid, providerCallSid: msg.start.callSid }, app.nodeLease.id);
      if (claim !== 'claimed') return refuse(claim === 'taken' ? 'call already has a media stream' : 'call has ended', { callId: call.id, callSid: msg.start.callSid });
      if (msg.start.mediaFormat.encoding !== 'audio/x-mulaw' || msg.start.mediaFormat.sampleRate !== 8000) {
        await app.callLifecycle.mediaEnded(call.id, 'protocol_error', `unsupported media format ${msg.start.mediaFormat.encoding}/${msg.start.mediaFormat.sampleRate}`);
        return refuse('unsupported media format');
      }
      // A deleted agent leaves the call without one; tool secrets sealed with another key end the call, with the
      // reason on the call record rather than only in a log.
      const agent = call.agentId ? await app.agents.forCall(call.organizationId, call.agentId).catch((err: unknown) => (err instanceof SecretKeyError ? err : null)) : null;
      if (agent instanceof SecretKeyError) {
        log.error({ callId: call.id, err: agent.message }, 'agent tool secrets cannot be decrypted');
        await app.callLifecycle.mediaEnded(call.id, 'error', agent.message);
        return refuse('agent configuration unreadable');
      }
      // The socket may have dropped while we were checking the token (the close handler sets the state).
      if ((state as string) === 'closed') {
        // The socket dropped while we were checking the token.
        await app.callLifecycle.mediaEnded(call.id, 'socket_closed');
        return;
      }
      session = app.callSessionFactory.create(
        // The carrier's sid as the webhook stored it (Twilio's start message carries the same one).
        { callId: call.id, organizationId: call.organizationId, streamSid: msg.start.streamSid, callSid: call.providerCallSid ?? msg.start.callSid, agent,
          variables: call.variables,
          direction: call.direction,
          carrierLeg,
          ourNumber: call.direction === 'outbound' ? call.fromNumber : call.toNumber,
          awaitAnsweredBy: call.direction === 'outbound' && call.machineDetection,
        },
        {
          log,
          send: (out) => {
            if (socket.readyState === socket.OPEN) socket.send(encodeTwilioMessage(out));
          },
          hangUp: (code, reason) => {
            state = 'closed';
            if (socket.readyState === socket.OPEN) socket.close(code, reason);
          },
        },
      );
      session.start();
      state = 'live';
      releaseSlot();
      for (const m of early.splice(0)) dispatch(m);
      if (call.direction === 'outbound' && call.machineDetection) {
        // The verdict may have come before the stream did, or while this socket was being set up (its event
        // then found no session on this node): read it again now that the session is registered.
        const answeredBy = call.answeredBy ?? (await app.calls.find(call.id))?.answeredBy;
        if (answeredBy) session.onAnsweredBy(answeredBy);
      }
    };

    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (state === 'closed') return;
      let msg: TwilioInbound;
      try {
        if (isBinary) throw new ProtocolError('not_json', 'binary frame');
        msg = parseTwilioMessage(data.toString('utf8'));
      } catch (err) {
        protocolErrors++;
        log.debug({ err: (err as Error).message }, 'bad media stream message');
        if (protocolErrors > MAX_PROTOCOL_ERRORS) {
          if (session) void session.end('protocol_error', `more than ${MAX_PROTOCOL_ERRORS} malformed messages`);
          else refuse('too many malformed messages');
        }
        return;
      }
      switch (state) {
        case 'waiting':
          if (msg.event === 'connected') return;
          if (msg.event !== 'start') return refuse(`${msg.event} before start`);
          clearTimeout(startTimer);
          begin(msg).catch((err: unknown) => {
            log.error({ err }, 'media stream start failed');
            state = 'closed';
            socket.close(INTERNAL_ERROR, 'internal error');
          });
          return;
        case 'starting':
          if (early.length < MAX_EARLY_FRAMES) early.push(msg);
          return;
        case 'live':
          dispatch(msg);
          return;
      }
    });

    socket.on('close', () => {
      state = 'closed';
      clearTimeout(startTimer);
      releaseSlot();
      // Ending twice is harmless: a session ended by `stop` keeps its reason.
      if (session) void session.end('socket_closed');
    });
    socket.on('error', (err: Error) => log.warn({ err: err.message }, 'media socket error'));
  });
}
