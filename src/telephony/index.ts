import fp from 'fastify-plugin';
import websocket from '@fastify/websocket';
import { CallsService } from '../calls/calls.service.js';
import { CallEventBus } from '../calls/call-events.js';
import type { MediaEngine } from '../media/media-engine.js';
import type { CallSession } from './call-session.js';
import { MAX_MESSAGE_BYTES } from './media-stream/twilio-protocol.js';
import { mediaStreamRoutes } from './media-stream/route.js';
import { CallLatencies } from './call-latency.js';
import { CallTurnsService } from '../calls/call-turns.service.js';
import { UsageService } from '../billing/usage.service.js';
import { createConversationProviders, type ConversationProviders } from '../agents/conversation/providers.js';
import { SttPrewarm } from '../agents/conversation/stt-prewarm.js';
import type { TelephonyProvider } from './provider/telephony-provider.js';
import { TwilioProvider } from './provider/twilio-provider.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Call records and stream tokens. */
    calls: CallsService;
    /** Live call events, fanned out over Redis when configured. */
    callEvents: CallEventBus;
    /** The calls whose media socket this node holds. */
    callSessions: Map<string, CallSession>;
    /** Worker-thread media processing (VAD now, TTS later); null runs calls without it. */
    mediaEngine: MediaEngine | null;
    /** Our own call-path latencies (Prometheus histograms plus recent samples). */
    callLatencies: CallLatencies;
    /** Call transcripts, turn by turn. */
    callTurns: CallTurnsService;
    /** Metered provider usage per call. */
    usage: UsageService;
    /** STT, LLM and TTS providers from the configuration. */
    conversationProviders: ConversationProviders;
    /** STT connections opened as soon as a call is known, before its media arrives. */
    sttPrewarm: SttPrewarm;
    /** The carrier (Twilio), or null when no account is configured. */
    telephony: TelephonyProvider | null;
  }
}

/** Calls, live sessions and the Twilio Media Streams socket. */
export const telephonyPlugin = fp(
  async (app, opts: { mediaEngine: MediaEngine | null; telephony?: TelephonyProvider | null }) => {
    const twilio = app.config.providers.twilio;
    app.decorate(
      'telephony',
      opts.telephony !== undefined
        ? opts.telephony
        : twilio.accountSid
          ? new TwilioProvider({ accountSid: twilio.accountSid, authToken: twilio.authToken, apiKeySid: twilio.apiKeySid, apiKeySecret: twilio.apiKeySecret, baseUrl: twilio.baseUrl })
          : null,
    );
    app.decorate('calls', new CallsService(app.db));
    const events = new CallEventBus(app.redis);
    await events.start();
    app.decorate('callEvents', events);
    app.decorate('callSessions', new Map<string, CallSession>());
    app.decorate('mediaEngine', opts.mediaEngine);
    app.decorate('callLatencies', new CallLatencies(app.metrics));
    app.decorate('callTurns', new CallTurnsService(app.db));
    app.decorate('usage', new UsageService(app.db));
    const providers = await createConversationProviders(app.config);
    app.decorate('conversationProviders', providers);
    const prewarm = new SttPrewarm(providers);
    app.decorate('sttPrewarm', prewarm);
    // Closing the app ends every live call with a reason before the database goes away. Added before
    // the websocket plugin so it runs before that plugin's own preClose drops every socket unannounced.
    app.addHook('preClose', async () => {
      await Promise.all([...app.callSessions.values()].map((s) => s.end('server_shutdown')));
    });
    // Answering-machine verdicts reach whichever node got the webhook; the node holding the call acts.
    events.subscribe((e) => {
      if (e.type !== 'call.answered_by') return;
      const answeredBy = e.answeredBy === 'human' || e.answeredBy === 'machine' || e.answeredBy === 'fax' ? e.answeredBy : 'unknown';
      app.callSessions.get(e.callId)?.onAnsweredBy(answeredBy);
    });
    await app.register(websocket, { options: { maxPayload: MAX_MESSAGE_BYTES } });
    await app.register(mediaStreamRoutes);
    app.addHook('onClose', async () => {
      prewarm.close();
      await events.close();
    });
  },
  { name: 'telephony', dependencies: ['db', 'rate-limit', 'agents', 'metrics'] },
);
