import type { FastifyBaseLogger } from 'fastify';
import type { Agent } from '../agents/agents.schemas.js';
import type { CallsService } from '../calls/calls.service.js';
import type { CallLifecycle } from '../calls/lifecycle/call-lifecycle.js';
import type { CallEventBus, CallEventInput } from '../calls/call-events.js';
import type { CallTurnsService } from '../calls/call-turns.service.js';
import { UsageMeterBuffer, type UsageService } from '../billing/usage.service.js';
import { vadOptionsFor } from '../agents/conversation/end-of-turn.js';
import { Conversation } from '../agents/conversation/conversation.js';
import { EchoResponder } from '../agents/conversation/echo-responder.js';
import type { Responder, VoiceOut } from '../agents/conversation/responder.js';
import type { ConversationProviders } from '../agents/conversation/providers.js';
import { ToolRunner } from '../agents/conversation/tools.js';
import type { SttPrewarm } from '../agents/conversation/stt-prewarm.js';
import type { TelephonyProvider } from './provider/telephony-provider.js';
import { CallRecorder } from '../calls/recordings/call-recorder.js';
import { recordingKey, recordingTempDir, type RecordingStore } from '../calls/recordings/recording-store.js';
import { transferTwiml } from './provider/twiml.js';
import type { EndReason } from '../calls/calls.table.js';
import { epochNow, type MediaChannel, type MediaEngine, type MediaEvent } from '../media/media-engine.js';
import type { CallLatencies } from './call-latency.js';
import { OutboundAudio, FRAME_BYTES } from './media-stream/outbound-audio.js';
import type { TwilioOutbound } from './media-stream/twilio-protocol.js';

/** The platform services a session uses: the same for every call of a node, held by the CallSessionFactory. */
export interface CallSessionServices {
  calls: CallsService;
  /** Where the session reports the end of its media side. */
  lifecycle: CallLifecycle;
  events: CallEventBus;
  media: MediaEngine | null;
  /** Speech and language providers; null runs no conversation (echo agents still work). */
  providers: ConversationProviders | null;
  /** STT streams opened when calls became known. */
  sttPrewarm: SttPrewarm | null;
  turns: CallTurnsService;
  usage: UsageService;
  toolsAllowPrivateNetwork: boolean;
  /** The carrier, for hangups and transfers of calls with a carrier leg. */
  telephony: TelephonyProvider | null;
  publicUrl: string;
  /** Where finished recordings go, and the data dir for the partial files. */
  recordings: RecordingStore;
  dataDir: string;
  latencies: CallLatencies;
}

/** A session's link to the media socket that carries its call. */
export interface CallSocketIo {
  log: FastifyBaseLogger;
  send(msg: TwilioOutbound): void;
  /** Closes the socket once the call has ended. */
  hangUp(code: number, reason: string): void;
}

/** What a session needs from the rest of the platform. */
export interface CallSessionDeps extends CallSessionServices, CallSocketIo {
  onEnded(session: CallSession): void;
}

/** Identifies the call a session carries. */
export interface CallInfo {
  callId: string;
  organizationId: string;
  streamSid: string;
  callSid: string;
  agent: Agent | null;
  /** Per-call values for the agent's `{{variables}}`. */
  variables: Record<string, string>;
  direction: 'inbound' | 'outbound';
  /** The call runs through the carrier (not a test call): hangups and transfers go to it. */
  carrierLeg: boolean;
  /** Our side's number (caller ID for transfers). */
  ourNumber: string | null;
  /** Outbound with answering-machine detection, verdict not in yet: the agent waits before speaking. */
  awaitAnsweredBy: boolean;
}

// Ends on our side that the carrier must hear about; the others came from the carrier or the caller.
const CARRIER_HANGUP_REASONS = new Set<EndReason>(['agent_hangup', 'max_duration', 'silence_timeout', 'provider_error', 'voicemail', 'not_answered', 'worker_crashed', 'protocol_error', 'error']);
// After the max-duration goodbye starts, the call ends at the latest this much later.
const WRAP_UP_BACKSTOP_MS = 15_000;

/**
 * One live call: the caller's audio in, the agent's audio out, and the call record kept true. It owns
 * the call's AbortSignal; ending the session (for any reason) aborts everything the call started.
 */
export class CallSession {
  private readonly abort = new AbortController();
  private readonly outbound: OutboundAudio;
  private channel: MediaChannel | null = null;
  // What answers the caller (the conversation engine, or echo); null for a call without an agent.
  private responder: Responder | null = null;
  private recorder: Promise<CallRecorder | null> | null = null;
  private recorderReady: CallRecorder | null = null;
  private ended = false;
  private maxDurationTimer: NodeJS.Timeout | null = null;
  /** Names of marks Twilio has echoed: the audio before them has been heard. */
  readonly heardMarks: string[] = [];
  /** Frames received from the caller. */
  framesIn = 0;
  readonly startedAt = Date.now();

  constructor(
    readonly info: CallInfo,
    private readonly deps: CallSessionDeps,
  ) {
    this.outbound = new OutboundAudio(info.streamSid, { send: (m) => this.sendOut(m) });
  }

  /** Aborted when the call ends. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Starts media processing, the conversation and the call's clock. */
  start(): void {
    const agent = this.info.agent;
    if (this.deps.media) {
      // Echo repeats each utterance after the fixed endpointing; the conversation's end-of-turn policy says what VAD reports.
      const silence = !agent ? {} : agent.voice.provider === 'echo' ? { minSilenceMs: agent.stt.endpointingMs } : vadOptionsFor(agent);
      this.channel = this.deps.media.open(this.info.callId, { ...silence, minSpeechMs: agent?.interruption.minSpeechMs }, (e) => this.onMediaEvent(e));
    }
    if (agent?.recording.enabled) this.startRecording();
    if (agent?.voice.provider === 'echo') {
      this.responder = new EchoResponder({ voice: this.voice(), latencies: this.deps.latencies, interruption: agent.interruption.enabled, publish: (e) => this.publish(e), end: (reason) => void this.end(reason) });
      this.responder.start();
    } else if (agent) {
      const problems = this.deps.providers?.problems(agent, this.channel) ?? ['no conversation providers'];
      if (problems.length > 0) {
        this.deps.log.warn({ problems }, 'agent cannot hold a conversation');
        void this.end('provider_error', problems.join('; '));
        return;
      }
      this.responder = this.startConversation(agent, this.deps.providers!);
    }
    if (agent) {
      this.maxDurationTimer = setTimeout(() => this.onMaxDuration(), agent.maxDurationSeconds * 1000);
      this.maxDurationTimer.unref();
    }
  }

  private startConversation(agent: Agent, providers: ConversationProviders): Conversation {
    const { callId, organizationId } = this.info;
    const log = this.deps.log;
    const conversation = new Conversation({
      callId,
      organizationId,
      agent,
      variables: this.info.variables,
      stt: providers.stt(agent),
      llm: providers.llm(agent, (from, to, reason) => log.warn({ from, to, reason }, 'LLM fell back')),
      tts: providers.tts(agent, this.channel),
      tools: new ToolRunner(agent.tools, { allowPrivateNetwork: this.deps.toolsAllowPrivateNetwork, canTransfer: this.info.carrierLeg && this.deps.telephony !== null }),
      turns: this.deps.turns,
      usage: new UsageMeterBuffer(this.deps.usage, organizationId, callId),
      voice: this.voice(),
      latencies: this.deps.latencies,
      log,
      signal: this.signal,
      publish: (e) => this.publish(e),
      end: (reason, detail) => void this.end(reason, detail),
      transfer: (to, summary) => this.transfer(to, summary),
    });
    conversation.start({ prewarmed: this.deps.sttPrewarm?.take(callId, this.signal) ?? null, awaitAnsweredBy: this.info.awaitAnsweredBy });
    return conversation;
  }

  // The agent's voice: the paced outbound queue, and its timeline of what the caller has heard.
  private voice(): VoiceOut {
    const outbound = this.outbound;
    return {
      play: (audio) => outbound.pushAudio(audio),
      mark: (name) => outbound.pushMark(name),
      clear: () => outbound.clear(),
      get queuedMs() {
        return outbound.queuedMs;
      },
      playedMs: () => outbound.playedMs(),
    };
  }

  // Both sides of the call, from the frames that pass through here anyway; nothing is held in memory.
  private startRecording(): void {
    const log = this.deps.log;
    this.recorder = CallRecorder.start(recordingTempDir(this.deps.dataDir), this.info.callId, { onError: (err) => log.warn({ err }, 'recording stopped') })
      .then((r) => (this.recorderReady = r))
      .catch((err: unknown) => {
        log.warn({ err }, 'could not start recording');
        return null;
      });
  }

  private async saveRecording(): Promise<void> {
    const recorder = await this.recorder;
    this.recorderReady = null;
    const done = await recorder?.finish();
    if (!done) return;
    try {
      const key = recordingKey(this.info.organizationId, this.info.callId);
      const { bytes } = await this.deps.recordings.save(key, done.path);
      await this.deps.calls.setRecording(this.info.callId, key, bytes);
    } catch (err) {
      this.deps.log.error({ err }, 'could not store recording');
    }
  }

  /** Answering-machine detection's verdict arrived (possibly on another node, via call events). */
  onAnsweredBy(answeredBy: 'human' | 'machine' | 'fax' | 'unknown'): void {
    this.responder?.onAnsweredBy(answeredBy);
  }

  // Redirects the live call to `to` with a new TwiML document; Twilio then ends our stream.
  private async transfer(to: string, summary: string | undefined): Promise<void> {
    const telephony = this.deps.telephony;
    if (!telephony || !this.info.carrierLeg) throw new Error('this call cannot be transferred');
    await this.deps.calls.recordTransfer(this.info.callId, { to, summary });
    // The cause goes on record before the carrier acts: its `stop` can reach us before its REST answer does.
    await this.deps.lifecycle.recordCause(this.info.callId, 'transferred', `to ${to}`);
    const whisperUrl = summary ? `${this.deps.publicUrl}/twilio/whisper?callId=${this.info.callId}` : undefined;
    try {
      await telephony.updateCallTwiml(this.info.callSid, transferTwiml({ to, callerId: this.info.ourNumber ?? undefined, whisperUrl }));
    } catch (err) {
      await this.deps.lifecycle.withdrawCause(this.info.callId, 'transferred');
      throw err;
    }
  }

  private onMaxDuration(): void {
    if (!this.responder) {
      void this.end('max_duration');
      return;
    }
    void this.responder.wrapUp('max_duration');
    setTimeout(() => void this.end('max_duration'), WRAP_UP_BACKSTOP_MS).unref();
  }

  /** One 20 ms frame of the caller's voice (base64 mu-law from Twilio). */
  onMedia(payload: string): void {
    if (this.ended) return;
    // Not from Buffer's shared pool: the frame's memory is transferred to a worker thread.
    const frame = new Uint8Array(FRAME_BYTES);
    const written = Buffer.from(frame.buffer).write(payload, 'base64');
    if (written === 0) return;
    const audio = written === FRAME_BYTES ? frame : frame.slice(0, written);
    this.framesIn++;
    this.recorderReady?.caller(audio);
    // A copy: the frame's buffer is transferred to the worker below, and the responder may keep it.
    this.responder?.onAudio(audio.slice());
    this.channel?.push(audio);
  }

  /** A key the caller pressed. */
  onDtmf(digit: string): void {
    this.publish({ type: 'call.dtmf', digit });
    this.responder?.onDtmf(digit);
  }

  /** Twilio has played everything we sent before this mark. */
  onMark(name: string): void {
    this.heardMarks.push(name);
    this.responder?.onMark(name);
  }

  /**
   * Ends the call's media side once, reporting `reason` to the lifecycle (a cause recorded earlier, such as
   * an API hangup, keeps its place); later calls do nothing. The call is final once the carrier agrees.
   */
  async end(reason: EndReason, detail?: string): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.abort.abort(new Error(`call ended: ${reason}`));
    if (this.maxDurationTimer) clearTimeout(this.maxDurationTimer);
    this.outbound.stop();
    this.channel?.close();
    // The abort above closed the responder; let its last turn and usage writes land before the record closes.
    if (this.responder) await settleWithin(this.responder.settled(), 2000);
    if (this.recorder) await settleWithin(this.saveRecording(), 10_000);
    try {
      await this.deps.lifecycle.mediaEnded(this.info.callId, reason, detail);
    } catch (err) {
      // The sweep finalizes the call after the grace period; the record is not lost.
      this.deps.log.error({ err, callId: this.info.callId }, 'could not record the end of the media stream');
    }
    this.deps.onEnded(this);
    if (reason !== 'socket_closed') this.deps.hangUp(1000, reason);
    // Closing the stream ends <Connect> and with it the call; telling the carrier too makes sure of it.
    if (CARRIER_HANGUP_REASONS.has(reason) && this.info.carrierLeg && this.deps.telephony) {
      this.deps.telephony.hangUp(this.info.callSid).catch((err: unknown) => this.deps.log.warn({ err }, 'carrier hangup failed'));
    }
  }

  private onMediaEvent(e: MediaEvent): void {
    if (this.ended) return;
    switch (e.kind) {
      case 'speech_start':
        this.publish({ type: 'call.speech_started', streamMs: e.atMs });
        this.responder?.onSpeechStart(e.atMs, e.detectedAt ?? epochNow());
        break;
      case 'speech_end':
        this.publish({ type: 'call.speech_stopped', streamMs: e.atMs, durationMs: e.durationMs });
        this.responder?.onSpeechEnd(e.atMs, e.detectedAt ?? epochNow());
        break;
      case 'speech_quiet':
        this.responder?.onSpeechQuiet?.(e.atMs, e.quiet);
        break;
      case 'failed':
        void this.end(e.reason === 'worker_crashed' ? 'worker_crashed' : 'error', e.detail);
        break;
      default: {
        const never: never = e;
        throw new Error(`unknown media event ${JSON.stringify(never)}`);
      }
    }
  }

  private sendOut(msg: TwilioOutbound): void {
    if (msg.event === 'media') {
      this.responder?.onFrameSent();
      this.recorderReady?.agent(Buffer.from(msg.media.payload, 'base64'));
    } else if (msg.event === 'clear') this.recorderReady?.agentCleared();
    this.deps.send(msg);
  }

  private publish(e: CallEventInput): void {
    this.deps.events.publish({ ...e, callId: this.info.callId, organizationId: this.info.organizationId, at: new Date().toISOString() } as Parameters<CallEventBus['publish']>[0]);
  }
}

// Waits for `p`, but never longer than `ms`: a stuck database must not hold a call open.
async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
