import fp from 'fastify-plugin';
import websocket from '@fastify/websocket';
import type { MediaEngine } from '../media/media-engine.js';
import type { CallSession } from './call-session.js';
import { CallSessionFactory } from './call-session-factory.js';
import { CallControl } from './call-control.js';
import { MAX_MESSAGE_BYTES } from './media-stream/twilio-protocol.js';
import { mediaStreamRoutes } from './media-stream/route.js';
import { CallLatencies } from './call-latency.js';
import { createConversationProviders, type ConversationProviders } from '../agents/conversation/providers.js';
import { SttPrewarm } from '../agents/conversation/stt-prewarm.js';
import type { TelephonyProvider } from './provider/telephony-provider.js';
import { TwilioProvider } from './provider/twilio-provider.js';
import { LifecycleSweep } from '../calls/lifecycle/lifecycle-sweep.js';
import { STREAM_TOKEN_TTL_MS } from '../calls/calls.service.js';
import { carrierLookup } from './carrier-lookup.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The calls whose media socket this node holds. */
    callSessions: Map<string, CallSession>;
    /** Builds the session of each call whose media socket this node accepts. */
    callSessionFactory: CallSessionFactory;
    /** Outbound calls and hangups at the carrier. */
    callControl: CallControl;
    /** Worker-thread media processing (VAD now, TTS later); null runs calls without it. */
    mediaEngine: MediaEngine | null;
    /** Our own call-path latencies (Prometheus histograms plus recent samples). */
    callLatencies: CallLatencies;
    /** STT, LLM and TTS providers from the configuration. */
    conversationProviders: ConversationProviders;
    /** STT connections opened as soon as a call is known, before its media arrives. */
    sttPrewarm: SttPrewarm;
    /** The carrier (Twilio), or null when no account is configured. */
    telephony: TelephonyProvider | null;
    /** Finalizes the calls whose end nobody will report (crashed nodes, lost callbacks, lost placements). */
    lifecycleSweep: LifecycleSweep;
  }
}

/** The carrier: Twilio when an account is configured, the given provider (tests, embedders), or none. */
export const carrierPlugin = fp(
  async (app, opts: { telephony?: TelephonyProvider | null }) => {
    const twilio = app.config.providers.twilio;
    app.decorate(
      'telephony',
      opts.telephony !== undefined
        ? opts.telephony
        : twilio.accountSid
          ? new TwilioProvider({ accountSid: twilio.accountSid, authToken: twilio.authToken, apiKeySid: twilio.apiKeySid, apiKeySecret: twilio.apiKeySecret, baseUrl: twilio.baseUrl })
          : null,
    );
  },
  { name: 'carrier' },
);

/** Live calls on this node: the Twilio Media Streams socket, call sessions, and call control at the carrier. */
export const telephonyPlugin = fp(
  async (app, opts: { mediaEngine: MediaEngine | null }) => {
    const sessions = new Map<string, CallSession>();
    app.decorate('callSessions', sessions);
    app.decorate('mediaEngine', opts.mediaEngine);
    const latencies = new CallLatencies(app.metrics);
    app.decorate('callLatencies', latencies);
    const providers = await createConversationProviders(app.config);
    app.decorate('conversationProviders', providers);
    const prewarm = new SttPrewarm(providers);
    app.decorate('sttPrewarm', prewarm);
    app.decorate(
      'callSessionFactory',
      new CallSessionFactory(
        {
          calls: app.calls,
          lifecycle: app.callLifecycle,
          events: app.callEvents,
          media: opts.mediaEngine,
          providers,
          sttPrewarm: prewarm,
          turns: app.callTurns,
          usage: app.usage,
          toolsAllowPrivateNetwork: app.config.toolsAllowPrivateNetwork,
          telephony: app.telephony,
          publicUrl: app.config.publicUrl,
          recordings: app.recordings,
          dataDir: app.config.dataDir,
          latencies,
        },
        { sessions, liveCalls: latencies.liveCalls },
      ),
    );
    app.decorate(
      'callControl',
      new CallControl({ calls: app.calls, lifecycle: app.callLifecycle, agents: app.agents, numbers: app.numbers, telephony: app.telephony, sessions, publicUrl: app.config.publicUrl, log: app.log }),
    );
    // Closing the app ends every live call with a reason before the database goes away. Added before
    // the websocket plugin so it runs before that plugin's own preClose drops every socket unannounced.
    app.addHook('preClose', async () => {
      await Promise.all([...sessions.values()].map((s) => s.end('server_shutdown')));
    });
    // Answering-machine verdicts reach whichever node got the webhook; the node holding the call acts.
    app.callEvents.subscribe((e) => {
      if (e.type !== 'call.answered_by') return;
      const answeredBy = e.answeredBy === 'human' || e.answeredBy === 'machine' || e.answeredBy === 'fax' ? e.answeredBy : 'unknown';
      sessions.get(e.callId)?.onAnsweredBy(answeredBy);
    });
    const sweep = new LifecycleSweep({
      db: app.db,
      lifecycle: app.callLifecycle,
      nodeLeaseMs: app.config.lifecycle.nodeLeaseMs,
      exclusiveNode: () => (app.nodeLease.exclusive ? app.nodeLease.id : null),
      testCallTtlMs: STREAM_TOKEN_TTL_MS,
      carrierLookup: app.telephony ? carrierLookup(app.telephony, app.calls) : undefined,
      log: (msg, err) => (err ? app.log.warn({ err }, msg) : app.log.info(msg)),
    });
    app.decorate('lifecycleSweep', sweep);
    let sweeping: NodeJS.Timeout | null = null;
    let running: Promise<unknown> = Promise.resolve();
    const runSweep = () => {
      running = sweep.run().catch((err: unknown) => app.log.warn({ err }, 'call sweep failed'));
    };
    // The first pass right at start: on a restart after a crash, the calls the dead process held end now.
    app.addHook('onReady', async () => {
      runSweep();
      sweeping = setInterval(runSweep, app.config.lifecycle.sweepMs);
      sweeping.unref();
    });
    app.addHook('onClose', async () => {
      if (sweeping) clearInterval(sweeping);
      await running;
    });
    await app.register(websocket, { options: { maxPayload: MAX_MESSAGE_BYTES } });
    await app.register(mediaStreamRoutes);
    app.addHook('onClose', async () => {
      prewarm.close();
    });
  },
  { name: 'telephony', dependencies: ['db', 'calls', 'billing', 'recordings', 'carrier', 'numbers', 'agents', 'metrics'] },
);
