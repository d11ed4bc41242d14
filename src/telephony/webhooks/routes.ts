import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { connectStreamTwiml, sayAndHangupTwiml, whisperTwiml } from '../provider/twiml.js';
import { twilioWebhookUrl, verifyTwilioSignature } from '../provider/twilio-signature.js';
import { AppError, forbidden } from '../../shared/errors.js';
import type { CallRow } from '../../calls/calls.table.js';
import { answeredByFromTwilio, callStatusFromTwilio, seconds } from './twilio-params.js';

type Params = Record<string, string>;

/** What callers hear when we will not take their call; never a 5xx, which Twilio reads as "application error". */
export const LINES = {
  notInService: 'The number you have called is not in service. Goodbye.',
  unavailable: 'This service is not available right now. Please try again later. Goodbye.',
  error: 'We are sorry, something went wrong. Please try again later. Goodbye.',
} as const;

// Twilio's form posts are small; a large one is not Twilio.
const MAX_FORM_BYTES = 64 * 1024;
const CALL_ID = /^call_[0-9a-z]{26}$/;

/**
 * Twilio's webhooks: `/twilio/voice` (TwiML for a call), `/twilio/status` (call progress), `/twilio/amd`
 * (answering-machine detection) and `/twilio/stream-status`. Every request must carry a valid
 * `X-Twilio-Signature` over PUBLIC_URL + path; anything else gets 403 and changes nothing.
 */
export async function twilioWebhookRoutes(app: FastifyInstance): Promise<void> {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: MAX_FORM_BYTES }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.addHook('preHandler', async (req: FastifyRequest) => {
    const authToken = app.config.providers.twilio.authToken;
    if (!authToken) throw new AppError('telephony_not_configured', 'Twilio is not configured on this server', 503);
    const params = (req.body ?? {}) as Params;
    const url = twilioWebhookUrl(app.config.publicUrl, req.url);
    const signature = req.headers['x-twilio-signature'];
    if (!verifyTwilioSignature({ authToken, url, params, signature: typeof signature === 'string' ? signature : null })) {
      req.log.warn({ url, callSid: params.CallSid, ip: req.ip, signed: typeof signature === 'string' }, 'twilio webhook signature rejected');
      throw forbidden('invalid X-Twilio-Signature');
    }
  });

  const opts = { schema: { hide: true } };
  const twiml = (reply: FastifyReply, xml: string) => reply.type('text/xml; charset=utf-8').send(xml);

  app.post('/twilio/voice', opts, async (req, reply) => {
    const p = (req.body ?? {}) as Params;
    try {
      const answer = await answerCall(app, req, p);
      return twiml(reply, answer);
    } catch (err) {
      req.log.error({ err, callSid: p.CallSid }, 'voice webhook failed');
      return twiml(reply, sayAndHangupTwiml(LINES.error));
    }
  });

  app.post('/twilio/status', opts, async (req, reply) => {
    const p = (req.body ?? {}) as Params;
    const status = callStatusFromTwilio(p.CallStatus);
    if (!p.CallSid || !status) return reply.code(204).send();
    const durationSeconds = seconds(p.CallDuration);
    const ref = { providerCallSid: p.CallSid, callId: callIdOf(req) };
    const call = await app.callLifecycle.carrierStatus(ref, { status, durationSeconds });
    const answeredBy = answeredByFromTwilio(p.AnsweredBy);
    if (call && answeredBy) await app.callLifecycle.recordAnsweredBy(ref, answeredBy);
    // The carrier's word, as it came: the call's own status turns final only when the call is finalized.
    if (call) app.callEvents.publish({ type: 'call.status', callId: call.id, organizationId: call.organizationId, at: new Date().toISOString(), status, durationSeconds });
    else req.log.info({ callSid: p.CallSid }, 'status callback for an unknown call');
    return reply.code(204).send();
  });

  app.post('/twilio/amd', opts, async (req, reply) => {
    const p = (req.body ?? {}) as Params;
    const answeredBy = answeredByFromTwilio(p.AnsweredBy);
    if (!p.CallSid || !answeredBy) return reply.code(204).send();
    const call = await app.callLifecycle.recordAnsweredBy({ providerCallSid: p.CallSid, callId: callIdOf(req) }, answeredBy);
    if (call) app.callEvents.publish({ type: 'call.answered_by', callId: call.id, organizationId: call.organizationId, at: new Date().toISOString(), answeredBy: call.answeredBy ?? answeredBy, raw: p.AnsweredBy ?? '' });
    return reply.code(204).send();
  });

  // Fetched by Twilio when the transfer target answers: the summary only they hear, then the two are joined.
  app.post('/twilio/whisper', opts, async (req, reply) => {
    const callId = callIdOf(req);
    const call = callId ? await app.calls.find(callId) : null;
    return twiml(reply, whisperTwiml(call?.transfer?.summary ?? ''));
  });

  app.post('/twilio/stream-status', opts, async (req, reply) => {
    const p = (req.body ?? {}) as Params;
    if (p.StreamEvent === 'stream-error' && p.CallSid) {
      const call = await app.calls.byProviderSid(p.CallSid);
      if (call) await app.callLifecycle.mediaEnded(call.id, 'error', `media stream error: ${p.StreamError ?? 'unknown'}`);
    }
    return reply.code(204).send();
  });
}

// Our call id from a callback URL we gave the carrier (signed with it), when well formed.
function callIdOf(req: FastifyRequest): string | undefined {
  const callId = (req.query as { callId?: string }).callId;
  return callId && CALL_ID.test(callId) ? callId : undefined;
}

// TwiML for a call Twilio asks about: our outbound call answered, or an inbound call to one of our numbers.
async function answerCall(app: FastifyInstance, req: FastifyRequest, p: Params): Promise<string> {
  const sid = p.CallSid;
  if (!sid) return sayAndHangupTwiml(LINES.error);
  const callId = callIdOf(req);
  let call = await app.calls.byProviderSid(sid);
  if (!call && callId) {
    // Outbound: Twilio may fetch the TwiML before our request that placed the call has stored its sid.
    const placed = await app.calls.find(callId);
    if (placed && placed.direction === 'outbound' && (placed.providerCallSid === null || placed.providerCallSid === sid)) {
      await app.calls.attachProviderSid(placed.id, sid);
      call = placed;
    }
  }
  if (!call) {
    const inbound = await acceptInbound(app, p);
    if (typeof inbound === 'string') return inbound;
    call = inbound;
  }
  if (call.endedAt || call.finalizedAt) return sayAndHangupTwiml(LINES.error);
  // Twilio asks for a call's TwiML once; asking again while its stream is live is a replayed request, whose
  // answer only the replayer reads. A token here would let a second socket try to join the call.
  if (call.streamSid) {
    req.log.warn({ callId: call.id, callSid: sid, ip: req.ip }, 'voice webhook for a call whose media stream is live; no stream token issued');
    return sayAndHangupTwiml(LINES.error);
  }
  const agent = call.agentId ? await app.agents.get(call.organizationId, call.agentId).catch(() => null) : null;
  if (!agent) return sayAndHangupTwiml(LINES.notInService);
  const token = await app.calls.issueStreamToken(call);
  app.sttPrewarm.open(call.id, agent);
  const base = app.config.publicUrl;
  return connectStreamTwiml({ streamUrl: `${base.replace(/^http/, 'ws')}/twilio/media`, token, statusCallbackUrl: `${base}/twilio/stream-status` });
}

// A new inbound call: the number's organization and agent, or the words the caller hears instead.
async function acceptInbound(app: FastifyInstance, p: Params): Promise<CallRow | string> {
  const number = p.To ? await app.numbers.findLive(p.To) : null;
  if (!number || !number.agentId) return sayAndHangupTwiml(LINES.notInService);
  const org = await app.organizations.get(number.organizationId);
  if (org.status !== 'active') return sayAndHangupTwiml(LINES.unavailable);
  try {
    return await app.calls.create(number.organizationId, {
      agentId: number.agentId,
      direction: 'inbound',
      fromNumber: p.From,
      toNumber: p.To,
      providerCallSid: p.CallSid,
      phoneNumberId: number.id,
      status: 'ringing',
    });
  } catch (err) {
    // Twilio retried the webhook while the first answer was on its way: the call exists now.
    const existing = await app.calls.byProviderSid(p.CallSid!);
    if (existing) return existing;
    throw err;
  }
}
