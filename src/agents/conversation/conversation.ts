import { renderPrompt } from '../prompt.js';
import type { EndReason } from '../../calls/calls.table.js';
import type { SttStream } from '../../media/providers.js';
import { epochNow } from '../../media/media-engine.js';
import { LastVoicedFrame } from '../../media/audio/speech-level.js';
import { ProviderError } from '../../shared/errors.js';
import type { CallerInput, ConversationDeps } from './conversation-deps.js';
import { AmdGate, amdAction } from './answering-machine.js';
import { ChatHistory } from './chat-history.js';
import { DtmfCollector } from './dtmf-collector.js';
import { endOfTurnPolicy, type EndOfTurnPolicy } from './end-of-turn.js';
import { LINES } from './lines.js';
import { AgentStateReporter, type AnsweredBy, type Responder, type StartOptions } from './responder.js';
import { Preemptions } from './preemption.js';
import { Speaker, llmRequest } from './speaker.js';
import { TurnDetector, type UserTurn } from './turn-detector.js';
import { TurnLog } from './turn-log.js';
import { Utterance, type UtteranceKind } from './utterance.js';

// After the last chunk's mark should have come back, stop waiting (a lost mark must not hold a hangup).
const HEARD_GRACE_MS = 3000;
// Per-caller-turn cap on waiting for the STT final after VAD says the caller stopped.
const FINAL_CAP_MS = 1200;
// Ends that get a goodbye line first.
const WRAP_UP_LINES: Partial<Record<EndReason, string>> = { max_duration: LINES.maxDuration };

/**
 * The turn-taking engine of one call (ARCHITECTURE.md §5): caller audio into the STT, VAD and STT into
 * turns, turns into streamed LLM -> sentence -> TTS -> audio with a mark per chunk (the `Speaker`),
 * barge-in that cuts everything at once and keeps what the caller heard, DTMF, silence re-prompts, and a
 * record of every turn as it happens.
 */
export class Conversation implements Responder {
  private stt: SttStream | null = null;
  private readonly history = new ChatHistory();
  private readonly detector: TurnDetector;
  private readonly log: TurnLog;
  private readonly state: AgentStateReporter;
  private readonly speaker: Speaker;
  private readonly dtmf: DtmfCollector;
  private readonly amd = new AmdGate();
  // The caller's last voiced frame: where the caller-wait figure starts.
  private readonly voiced = new LastVoicedFrame();
  private active: Utterance | null = null;
  private utterances = 0;
  private ending = false;
  private silenceTimer: NodeJS.Timeout | null = null;
  private reprompts = 0;
  private readonly policy: EndOfTurnPolicy;
  // LLM requests started on the caller's pauses, before their turn is confirmed.
  private readonly preemptions: Preemptions;
  private readonly systemPrompt: string;
  private readonly variables: Record<string, string>;

  constructor(private readonly deps: ConversationDeps) {
    this.variables = { ...deps.agent.variables, ...deps.variables };
    this.systemPrompt = renderPrompt(deps.agent.systemPrompt, this.variables);
    this.policy = endOfTurnPolicy(deps.agent);
    this.detector = new TurnDetector(
      { capMs: Math.max(FINAL_CAP_MS, deps.agent.stt.endpointingMs * 2), policy: this.policy },
      (turn) => void this.onUserTurn(turn),
      () => this.stt?.flush(),
      { onPause: (text) => this.preempt(text), onResume: () => this.discardPreemption() },
    );
    this.log = new TurnLog(deps);
    this.preemptions = new Preemptions({
      llm: deps.llm,
      request: llmRequest(deps.agent, deps.tools.specs()),
      meter: (delta) => this.log.meterLlm(delta),
      outcome: (outcome) => deps.latencies.preemption(outcome),
      // A discarded request's tokens go out with the next turn's usage write (one write per turn, not per
      // discard: on the embedded database every write runs on this thread); after the call, at once.
      settled: () => {
        if (this.deps.signal.aborted) this.flushUsage();
      },
    });
    this.state = new AgentStateReporter(deps.publish);
    this.speaker = new Speaker(deps, this.history, this.systemPrompt, { log: this.log, speaking: () => this.state.set('speaking') });
    this.dtmf = new DtmfCollector((digits) => void this.respond({ text: `[The caller pressed the keys: ${digits}]`, endOfSpeechAt: null, sttFinalAt: null, kind: 'dtmf', shown: digits }));
    deps.signal.addEventListener('abort', () => this.close(), { once: true });
  }

  /**
   * Opens the STT stream (before any audio; or takes one opened when the call became known) and says
   * the first message, or waits for the caller.
   */
  start(options: StartOptions = {}): void {
    const { agent } = this.deps;
    this.stt = options.prewarmed ?? this.deps.stt.stream({ language: agent.language, model: agent.stt.model, endpointingMs: agent.stt.endpointingMs, signal: this.deps.signal });
    void this.listen(this.stt);
    if (options.awaitAnsweredBy) this.amd.hold(() => this.onAnsweredBy('unknown'), options.amdWaitMs);
    else this.greet();
    if (!this.active) this.state.set('listening');
  }

  /** Answering-machine detection's verdict on an outbound call decides what the agent says first. */
  onAnsweredBy(answeredBy: AnsweredBy): void {
    if (this.ending || !this.amd.release()) return;
    const action = amdAction(answeredBy, this.deps.agent.voicemail, this.variables);
    switch (action.kind) {
      case 'greet':
        this.greet();
        return;
      case 'end':
        this.ending = true;
        this.deps.end(action.reason, action.detail);
        return;
      case 'leave_message':
        this.ending = true;
        void this.say(action.message, 'goodbye').then(async (u) => {
          await this.waitHeard(u);
          this.deps.end('voicemail', 'answering machine: message left');
        });
        return;
      default: {
        const never: never = action;
        throw new Error(`unknown AMD action ${JSON.stringify(never)}`);
      }
    }
  }

  // The recording disclosure, then the first message (or, with neither, wait for the caller).
  private greet(): void {
    const { agent } = this.deps;
    const first = renderPrompt(agent.firstMessage, this.variables).trim();
    const disclosure = agent.recording.enabled ? agent.recording.disclosure.trim() : '';
    const line = [disclosure, first].filter(Boolean).join(' ');
    if (line) void this.say(line, 'first_message');
    else this.armSilence();
  }

  /** One 20 ms frame of the caller's audio. */
  onAudio(mulaw: Uint8Array): void {
    const voiced = this.voiced.push(mulaw);
    this.stt?.push(mulaw);
    this.detector.audioFrame(voiced, this.voiced.streamEndMs);
  }

  /** VAD: the caller started talking; over an interruptible utterance, that is a barge-in. */
  onSpeechStart(_atMs: number, detectedAt: number): void {
    this.detector.speechStarted();
    this.disarmSilence();
    this.reprompts = 0;
    const u = this.active;
    if (!u || !u.interruptible || !this.deps.agent.interruption.enabled) return;
    this.cutOff(u, detectedAt);
  }

  /** VAD: the caller stopped talking at stream time `atMs`. */
  onSpeechEnd(atMs: number, detectedAt: number): void {
    this.detector.speechEnded(atMs, detectedAt);
  }

  /** VAD, inside speech: the model hears a pause from `atMs`, or the voice again. */
  onSpeechQuiet(atMs: number, quiet: boolean): void {
    this.detector.speechQuiet(quiet, atMs);
  }

  /** Twilio echoed a mark: the audio before it was played. */
  onMark(name: string): void {
    const u = this.active;
    if (!u || !u.onMark(name)) return;
    if (u.allHeard) this.finishUtterance(u);
    // Everything said so far was heard and more is coming (a tool runs, TTS lags): the agent is working.
    else if (u.caughtUp) this.state.set('thinking');
  }

  /** A key the caller pressed. */
  onDtmf(digit: string): void {
    this.disarmSilence();
    this.reprompts = 0;
    this.dtmf.press(digit);
  }

  /** The call session sent an audio frame to Twilio (times the first frame of an answer). */
  onFrameSent(): void {
    this.log.onFrameSent();
  }

  /** Says goodbye (the caller cannot cut it) and ends the call with `reason`. */
  async wrapUp(reason: EndReason): Promise<void> {
    if (this.ending) return;
    this.ending = true;
    if (this.active) this.cutOff(this.active, null);
    const line = WRAP_UP_LINES[reason];
    if (line) await this.waitHeard(await this.say(line, 'goodbye'));
    this.deps.end(reason);
  }

  private async listen(stream: SttStream): Promise<void> {
    try {
      for await (const e of stream) {
        switch (e.kind) {
          case 'interim':
            if (e.text) this.deps.publish({ type: 'call.transcript', role: 'user', text: `${this.detector.pendingText} ${e.text}`.trim(), final: false });
            break;
          case 'final':
            this.detector.sttFinal(e.text, e.end, e.speechFinal);
            break;
          case 'utterance_end':
            this.detector.utteranceEnd();
            break;
          case 'speech_started':
            break;
          default: {
            const never: never = e;
            throw new Error(`unknown STT event ${JSON.stringify(never)}`);
          }
        }
      }
    } catch (err) {
      if (this.deps.signal.aborted) return;
      void this.failProvider(err);
    }
  }

  private async onUserTurn(turn: UserTurn): Promise<void> {
    // Until AMD has spoken, "Hello?" may be a person or a mailbox greeting: the verdict decides what to say.
    if (this.amd.waiting) {
      this.discardPreemption();
      return;
    }
    const lastVoicedAt = this.voiced.frame?.at ?? null;
    await this.respond({ text: turn.text, endOfSpeechAt: turn.endOfSpeechAt, sttFinalAt: turn.sttFinalAt, kind: 'speech', shown: turn.text, lastVoicedAt, confirmedAt: epochNow() });
  }

  // Answers one caller turn: LLM rounds (with tools) streamed through TTS.
  private async respond(input: CallerInput): Promise<void> {
    if (this.ending || this.deps.signal.aborted) return;
    const previous = this.active;
    // With interruption off the caller may talk over the agent: answer after the current utterance.
    if (previous && !previous.interrupted) await previous.finished;
    if (this.ending || this.deps.signal.aborted) {
      this.discardPreemption();
      return;
    }
    this.history.addUser(input.text);
    const preempted = this.preemptions.take(this.history.forRequest(this.systemPrompt));
    const count = this.preemptions.count(preempted);
    const userSeq = this.log.callerTurn(input.kind, input.shown, this.policy.adaptive ? count : undefined);
    this.deps.publish({ type: 'call.transcript', role: 'user', text: input.shown, final: true, seq: userSeq });

    const u = this.begin(input.kind === 'dtmf' ? 'dtmf' : 'speech', true);
    if (input.endOfSpeechAt !== null && input.sttFinalAt !== null) u.latency.sttFinalMs = round(Math.max(0, input.sttFinalAt - input.endOfSpeechAt));
    u.turnConfirmedAt = input.confirmedAt ?? null;
    u.callerVoiceEndedAt = input.lastVoicedAt ?? null;
    if (u.callerVoiceEndedAt !== null && u.turnConfirmedAt !== null) u.latency.endOfTurnMs = round(Math.max(0, u.turnConfirmedAt - u.callerVoiceEndedAt));
    try {
      const outcome = await this.speaker.answer(u, input.endOfSpeechAt, (to, summary) => this.transfer(u, to, summary), preempted);
      if (u.signal.aborted || outcome.kind === 'transferred') return;
      if (outcome.kind === 'hang_up') {
        this.ending = true;
        this.completeGeneration(u);
        await this.waitHeard(u);
        this.deps.end('agent_hangup', outcome.reason);
        return;
      }
      this.completeGeneration(u);
    } catch (err) {
      // An aborted turn (barge-in, hangup) ends its streams with errors that mean nothing.
      if (u.signal.aborted) return;
      await this.failProvider(err);
    } finally {
      this.flushUsage();
    }
  }

  // Waits until the caller heard what the agent said, then hands the call over; false when the carrier refused.
  private async transfer(u: Utterance, to: string, summary: string | undefined): Promise<boolean> {
    if (!this.deps.transfer) return false;
    this.completeGeneration(u);
    await this.waitHeard(u);
    try {
      await this.deps.transfer(to, summary);
    } catch (err) {
      this.deps.log.warn({ err, to }, 'transfer failed');
      // The model gets another round to tell the caller.
      u.generationDone = false;
      return false;
    }
    this.ending = true;
    this.deps.end('transferred', `to ${to}`);
    return true;
  }

  // Says a fixed line (first message, re-prompt, goodbye) as its own utterance.
  private async say(text: string, kind: UtteranceKind): Promise<Utterance> {
    const u = this.begin(kind, kind !== 'goodbye');
    try {
      await this.speaker.sayLine(u, text, kind === 'first_message');
      this.completeGeneration(u);
    } catch (err) {
      if (!u.signal.aborted) await this.failProvider(err);
    }
    this.flushUsage();
    return u;
  }

  private begin(kind: UtteranceKind, interruptible: boolean): Utterance {
    this.disarmSilence();
    const u = new Utterance(++this.utterances, kind, interruptible, this.deps.signal);
    this.active = u;
    this.state.set('thinking');
    return u;
  }

  private completeGeneration(u: Utterance): void {
    u.generationDone = true;
    if (u.allHeard) this.finishUtterance(u);
  }

  // The caller heard the whole utterance.
  private finishUtterance(u: Utterance): void {
    if (this.active !== u) return;
    this.active = null;
    this.state.set('listening');
    u.finish();
    if (u.hasAudio) {
      this.updateTurn(u, { text: u.spokenText, endedAt: new Date(), latency: u.latency });
      this.deps.publish({ type: 'call.transcript', role: 'assistant', text: u.spokenText, final: true, seq: u.recordSeq ?? undefined });
    }
    if (!this.ending) this.armSilence();
  }

  /**
   * Stops an utterance: its audio (`clear`), its LLM and TTS, and its history cut to what the caller heard.
   * `detectedAt` is the VAD onset of a barge-in (timed), null for a stop of our own (a goodbye).
   */
  private cutOff(u: Utterance, detectedAt: number | null): void {
    // What the caller heard is fixed now: read the timeline before `clear` cuts it back.
    const playedMs = this.deps.voice.playedMs();
    if (u.hasAudio) {
      this.deps.voice.clear();
      if (detectedAt !== null) this.deps.latencies.bargeIn(epochNow() - detectedAt);
    }
    if (this.active === u) this.active = null;
    this.log.forget(u);
    this.state.set('listening');
    const heardText = u.interrupt(this.history, playedMs);
    if (!u.hasAudio) return;
    this.updateTurn(u, { text: heardText, interrupted: true, endedAt: new Date(), latency: u.latency });
    this.deps.publish({ type: 'call.interrupted', seq: u.recordSeq ?? 0, heardText });
    this.deps.publish({ type: 'call.transcript', role: 'assistant', text: heardText, final: true, seq: u.recordSeq ?? undefined, interrupted: true });
  }

  // Waits until the caller heard `u`, or until its audio should long have played.
  private async waitHeard(u: Utterance): Promise<void> {
    if (u.allHeard) return;
    const playedFor = u.firstAudioAt === null ? 0 : epochNow() - u.firstAudioAt;
    const capMs = Math.max(0, u.queuedAudioMs - playedFor) + HEARD_GRACE_MS;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([u.finished, new Promise<void>((resolve) => (timer = setTimeout(resolve, capMs)))]);
    clearTimeout(timer);
  }

  // A provider failed for good: apologize if we still can speak, then end with the reason on record.
  private async failProvider(err: unknown): Promise<void> {
    if (this.deps.signal.aborted) return;
    const provider = err instanceof ProviderError ? err.provider : 'internal';
    const detail = `${provider}: ${(err as Error).message ?? String(err)}`;
    this.deps.log.warn({ err, provider }, 'conversation provider failed');
    if (this.ending && this.active?.kind === 'goodbye') {
      this.deps.end('provider_error', detail);
      return;
    }
    this.ending = true;
    if (this.active) this.cutOff(this.active, null);
    if (provider !== this.deps.tts.name) await this.waitHeard(await this.say(LINES.apology, 'goodbye'));
    this.deps.end('provider_error', detail);
  }

  private armSilence(): void {
    this.disarmSilence();
    if (this.ending || this.deps.signal.aborted || this.detector.callerSpeaking) return;
    this.silenceTimer = setTimeout(() => void this.onSilence(), this.deps.agent.silenceTimeoutSeconds * 1000);
    this.silenceTimer.unref?.();
  }

  private disarmSilence(): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = null;
  }

  // No speech for the agent's silence timeout: re-prompt once, then say goodbye.
  private async onSilence(): Promise<void> {
    this.silenceTimer = null;
    if (this.ending || this.active || this.detector.callerSpeaking || this.detector.pendingText) return;
    this.reprompts++;
    if (this.reprompts === 1) {
      await this.say(LINES.reprompt, 'reprompt');
      return;
    }
    this.ending = true;
    await this.waitHeard(await this.say(LINES.silenceGoodbye, 'goodbye'));
    this.deps.end('silence_timeout');
  }

  // The caller paused with these words transcribed: start answering them, audio held until the turn is theirs.
  private preempt(text: string): void {
    // Busy (speaking, answering, deciding about a mailbox): a request now would be built on a history
    // that changes before the turn is answered.
    if (this.ending || this.deps.signal.aborted || this.active || this.amd.waiting || !this.policy.adaptive) {
      this.discardPreemption();
      return;
    }
    this.preemptions.start(text, this.history.forRequestWith(this.systemPrompt, text));
  }

  private discardPreemption(): void {
    this.preemptions.discard();
  }

  private updateTurn(u: Utterance, patch: Parameters<TurnLog['answerEnded']>[1]): void {
    this.log.answerEnded(u, patch);
  }

  private flushUsage(): void {
    this.log.flushUsage({ seconds: this.stt?.audioSeconds ?? 0, provider: this.deps.stt.name, model: this.deps.agent.stt.model });
  }

  /** Ends the conversation: closes the STT, records the unfinished turn, writes the remaining usage. */
  close(): void {
    this.detector.close();
    this.discardPreemption();
    this.disarmSilence();
    this.amd.close();
    this.dtmf.close();
    const u = this.active;
    if (u) {
      this.active = null;
      const heard = u.heardText(this.deps.voice.playedMs());
      u.abort(new Error('call ended'));
      if (u.hasAudio) this.updateTurn(u, { text: u.allHeard ? u.spokenText : heard, interrupted: !u.allHeard, endedAt: new Date(), latency: u.latency });
    }
    this.stt?.close();
    this.flushUsage();
  }

  /** Resolves when every turn and usage write so far has finished (tests, shutdown). */
  async settled(): Promise<void> {
    await this.log.settled();
  }
}

const round = (ms: number): number => Math.round(ms);
