import type { FastifyBaseLogger } from 'fastify';
import type { Agent } from '../agents.schemas.js';
import { renderPrompt } from '../prompt.js';
import type { CallTurnsService, NewTurn, TurnUpdate } from '../../calls/call-turns.service.js';
import type { CallEventInput } from '../../calls/call-events.js';
import type { EndReason } from '../../calls/calls.table.js';
import type { UsageMeterBuffer } from '../../billing/usage.service.js';
import type { ChatMessage, LlmDelta, LlmRequest, SttProvider, SttStream, ToolCall, TtsProvider } from '../../media/providers.js';
import { epochNow } from '../../media/media-engine.js';
import { ProviderError } from '../../shared/errors.js';
import { AsyncQueue } from '../../shared/async-queue.js';
import type { CallLatencies } from '../../telephony/call-latency.js';
import { SentenceChunker } from './sentence-chunker.js';
import { TurnDetector, type UserTurn } from './turn-detector.js';
import { Utterance, type UtteranceKind } from './utterance.js';
import type { ToolRunner } from './tools.js';

/** The agent's voice on its way to the caller (the call session's paced outbound queue). */
export interface VoiceOut {
  /** Queues 8 kHz mu-law audio. */
  play(mulaw: Uint8Array): void;
  /** Queues a mark after the audio queued so far. */
  mark(name: string): void;
  /** Drops unsent audio and tells Twilio to drop what it buffered. */
  clear(): void;
}

/** A chat model with its ordered fallbacks. */
export interface ChatModel {
  chat(request: Omit<LlmRequest, 'model'>, signal: AbortSignal): AsyncIterable<LlmDelta>;
}

/** Everything one conversation needs; the call session provides it. */
export interface ConversationDeps {
  callId: string;
  organizationId: string;
  agent: Agent;
  /** Per-call values for the prompt's `{{variables}}` (over the agent's defaults). */
  variables: Record<string, string>;
  stt: SttProvider;
  llm: ChatModel;
  tts: TtsProvider;
  tools: ToolRunner;
  turns: CallTurnsService;
  usage: UsageMeterBuffer;
  voice: VoiceOut;
  latencies: CallLatencies;
  log: FastifyBaseLogger;
  /** Aborted when the call ends. */
  signal: AbortSignal;
  publish(event: CallEventInput): void;
  /** Ends the call (the session closes the record and the socket). */
  end(reason: EndReason, detail?: string): void;
  /** Hands the live call to another number at the carrier; rejects when the carrier refuses. */
  transfer?(to: string, summary: string | undefined): Promise<void>;
}

/** How the conversation begins. */
export interface StartOptions {
  /** An STT stream opened when the call became known. */
  prewarmed?: SttStream | null;
  /** Outbound call with answering-machine detection: say nothing until its verdict (or `amdWaitMs`). */
  awaitAnsweredBy?: boolean;
  amdWaitMs?: number;
}

/** Lines the engine says on its own. English for now; per-agent overrides can come with localization. */
export const LINES = {
  reprompt: 'Are you still there?',
  silenceGoodbye: "I haven't heard from you, so I'll end the call now. Goodbye.",
  apology: "I'm sorry, I'm having technical difficulties right now. Please call back later. Goodbye.",
  maxDuration: "We've reached the time limit for this call. Thank you for calling. Goodbye.",
  filler: 'One moment, please.',
} as const;

// A slow tool gets a filler line after this long (at once when the agent configured one for the tool).
const FILLER_AFTER_MS = 700;
// Tool round trips per caller turn; a model stuck calling tools must still answer.
const MAX_TOOL_ROUNDS = 5;
// Digits typed within this interval form one input; '#' ends it at once.
const DTMF_GAP_MS = 1500;
// After the last chunk's mark should have come back, stop waiting (a lost mark must not hold a hangup).
const HEARD_GRACE_MS = 3000;
// Per-caller-turn cap on waiting for the STT final after VAD says the caller stopped.
const FINAL_CAP_MS = 1200;
// Outbound calls wait this long for answering-machine detection before speaking anyway.
const AMD_WAIT_MS = 8000;

/**
 * The turn-taking engine of one call (ARCHITECTURE.md §5): caller audio into the STT, VAD and STT into
 * turns, turns into streamed LLM -> sentence -> TTS -> audio with a mark per chunk, barge-in that cuts
 * everything at once, tools, DTMF, silence re-prompts, and a record of every turn as it happens.
 */
export class Conversation {
  private stt: SttStream | null = null;
  private readonly history: ChatMessage[] = [];
  private readonly detector: TurnDetector;
  private active: Utterance | null = null;
  private seq = 0;
  private utterances = 0;
  private ending = false;
  private silenceTimer: NodeJS.Timeout | null = null;
  private reprompts = 0;
  private dtmf = '';
  private dtmfTimer: NodeJS.Timeout | null = null;
  // The utterance whose first outbound frame is still to be timed, with its end-of-speech instant.
  private awaitingFrame: { u: Utterance; endOfSpeechAt: number | null; providerMs: number } | null = null;
  private sttSecondsFlushed = 0;
  private awaitingAnsweredBy = false;
  private amdTimer: NodeJS.Timeout | null = null;
  // Turn rows are written in order, off the hot path; one failing write must not stop the next.
  private records: Promise<unknown> = Promise.resolve();
  private readonly systemPrompt: string;
  private readonly variables: Record<string, string>;

  constructor(private readonly deps: ConversationDeps) {
    this.variables = { ...deps.agent.variables, ...deps.variables };
    this.systemPrompt = renderPrompt(deps.agent.systemPrompt, this.variables);
    this.detector = new TurnDetector(
      { capMs: Math.max(FINAL_CAP_MS, deps.agent.stt.endpointingMs * 2) },
      (turn) => void this.onUserTurn(turn),
      () => this.stt?.flush(),
    );
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
    if (options.awaitAnsweredBy) {
      this.awaitingAnsweredBy = true;
      this.amdTimer = setTimeout(() => this.onAnsweredBy('unknown'), options.amdWaitMs ?? AMD_WAIT_MS);
      this.amdTimer.unref?.();
      return;
    }
    this.greet();
  }

  /**
   * Answering-machine detection's verdict on an outbound call: a person (or no verdict) hears the first
   * message; a machine gets the agent's voicemail behaviour; a fax is hung up on.
   */
  onAnsweredBy(answeredBy: 'human' | 'machine' | 'fax' | 'unknown'): void {
    if (!this.awaitingAnsweredBy || this.ending) return;
    this.awaitingAnsweredBy = false;
    if (this.amdTimer) clearTimeout(this.amdTimer);
    const { voicemail } = this.deps.agent;
    if (answeredBy === 'fax') {
      this.ending = true;
      this.deps.end('not_answered', 'fax machine');
      return;
    }
    if (answeredBy !== 'machine') {
      this.greet();
      return;
    }
    this.ending = true;
    // DetectMessageEnd reports a machine after its greeting and beep: speaking now lands in the mailbox.
    const message = voicemail.action === 'leave_message' && voicemail.message ? renderPrompt(voicemail.message, this.variables).trim() : '';
    if (!message) {
      this.deps.end('voicemail', 'answering machine: hung up');
      return;
    }
    void this.say(message, 'goodbye').then(async (u) => {
      await this.waitHeard(u);
      this.deps.end('voicemail', 'answering machine: message left');
    });
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
    this.stt?.push(mulaw);
  }

  /** VAD: the caller started talking (after the agent's minimum speech time). */
  onSpeechStart(detectedAt: number): void {
    this.detector.speechStarted();
    this.disarmSilence();
    this.reprompts = 0;
    const u = this.active;
    if (!u || !u.interruptible || !this.deps.agent.interruption.enabled) return;
    if (u.hasAudio) {
      this.deps.voice.clear();
      this.deps.latencies.bargeIn(epochNow() - detectedAt);
    }
    this.interrupt(u);
  }

  /** VAD: the caller stopped talking at stream time `streamMs`. */
  onSpeechEnd(streamMs: number, detectedAt: number): void {
    this.detector.speechEnded(streamMs, detectedAt);
  }

  /** Twilio echoed a mark: the audio before it was played. */
  onMark(name: string): void {
    const u = this.active;
    if (!u || !u.onMark(name)) return;
    if (u.allHeard) this.finishUtterance(u);
  }

  /** A key the caller pressed. */
  onDtmf(digit: string): void {
    this.disarmSilence();
    this.reprompts = 0;
    if (this.dtmfTimer) clearTimeout(this.dtmfTimer);
    if (digit !== '#') this.dtmf += digit;
    const submit = () => {
      this.dtmfTimer = null;
      const digits = this.dtmf;
      this.dtmf = '';
      if (digits) void this.respond({ text: `[The caller pressed the keys: ${digits}]`, endOfSpeechAt: null, sttFinalAt: null, kind: 'dtmf', shown: digits });
    };
    if (digit === '#') submit();
    else this.dtmfTimer = setTimeout(submit, DTMF_GAP_MS);
  }

  /** The call session sent an audio frame to Twilio (times the first frame of an answer). */
  onFrameSent(): void {
    const pending = this.awaitingFrame;
    if (!pending) return;
    this.awaitingFrame = null;
    if (pending.endOfSpeechAt === null) return;
    const responseMs = epochNow() - pending.endOfSpeechAt;
    const overheadMs = Math.max(0, responseMs - pending.providerMs);
    pending.u.latency.firstFrameOutMs = round(responseMs);
    pending.u.latency.overheadMs = round(overheadMs);
    this.deps.latencies.turn(responseMs, overheadMs);
  }

  /** Says goodbye and ends the call with `reason` (max duration and the like); the caller cannot cut it. */
  async wrapUp(reason: EndReason, line: string): Promise<void> {
    if (this.ending) return;
    this.ending = true;
    if (this.active) this.interruptQuietly(this.active);
    const u = await this.say(line, 'goodbye');
    await this.waitHeard(u);
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
    if (this.awaitingAnsweredBy) return;
    await this.respond({ text: turn.text, endOfSpeechAt: turn.endOfSpeechAt, sttFinalAt: turn.sttFinalAt, kind: 'speech', shown: turn.text });
  }

  // Answers one caller turn: LLM rounds (with tools) streamed through TTS.
  private async respond(input: { text: string; shown: string; kind: 'speech' | 'dtmf'; endOfSpeechAt: number | null; sttFinalAt: number | null }): Promise<void> {
    if (this.ending || this.deps.signal.aborted) return;
    const previous = this.active;
    // With interruption off the caller may talk over the agent: answer after the current utterance.
    if (previous && !previous.interrupted) await previous.finished;
    if (this.ending || this.deps.signal.aborted) return;
    const userSeq = ++this.seq;
    const now = new Date();
    this.record({ organizationId: this.deps.organizationId, callId: this.deps.callId, seq: userSeq, role: 'user', kind: input.kind, text: input.shown, startedAt: now, endedAt: now });
    this.deps.publish({ type: 'call.transcript', role: 'user', text: input.shown, final: true, seq: userSeq });
    this.history.push({ role: 'user', content: input.text });

    const u = this.begin(input.kind === 'dtmf' ? 'dtmf' : 'speech', true);
    if (input.endOfSpeechAt !== null && input.sttFinalAt !== null) u.latency.sttFinalMs = round(Math.max(0, input.sttFinalAt - input.endOfSpeechAt));
    try {
      for (let round = 0; round < MAX_TOOL_ROUNDS; round++) {
        const { toolCalls } = await this.generate(u, round, input.endOfSpeechAt);
        if (u.signal.aborted) return;
        if (toolCalls.length === 0) break;
        let hangUp: { reason?: string } | null = null;
        for (const call of toolCalls) {
          let outcome = await this.runTool(u, call);
          if (u.signal.aborted) return;
          if (outcome.kind === 'transfer') {
            const done = await this.transfer(u, outcome.to, outcome.summary);
            if (done) return;
            outcome = { kind: 'result', ok: false, content: JSON.stringify({ error: 'the transfer failed; tell the caller and offer something else' }), ms: 0 };
          }
          this.history.push({ role: 'tool', toolCallId: call.id, content: outcome.content });
          if (outcome.kind === 'end_call') hangUp = { reason: outcome.reason };
        }
        if (hangUp) {
          this.ending = true;
          this.completeGeneration(u);
          await this.waitHeard(u);
          this.deps.end('agent_hangup', hangUp.reason);
          return;
        }
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

  // One LLM round: streams text into the chunker and the chunks into TTS while the model still writes.
  private async generate(u: Utterance, round: number, endOfSpeechAt: number | null): Promise<{ text: string; toolCalls: ToolCall[] }> {
    const { agent } = this.deps;
    const messages: ChatMessage[] = this.systemPrompt ? [{ role: 'system', content: this.systemPrompt }, ...this.history] : [...this.history];
    const entry: Extract<ChatMessage, { role: 'assistant' }> = { role: 'assistant', content: '' };
    this.history.push(entry);
    u.historyEntries.set(round, entry);

    const sentences = new AsyncQueue<string>();
    let ttsError: unknown = null;
    const speaking = this.speakAll(u, sentences, round, endOfSpeechAt).catch((err: unknown) => {
      ttsError = err;
    });
    const chunker = new SentenceChunker();
    const requestedAt = epochNow();
    let text = '';
    let firstSentence = true;
    const toolCalls: ToolCall[] = [];
    const tools = this.deps.tools.specs();
    try {
      for await (const delta of this.deps.llm.chat({ messages, tools: tools.length ? tools : undefined, temperature: agent.llm.temperature, maxTokens: agent.llm.maxTokens }, u.signal)) {
        if (ttsError) throw ttsError;
        switch (delta.kind) {
          case 'text':
            if (!text && round === 0) u.latency.llmFirstTokenMs ??= round2(epochNow() - requestedAt);
            text += delta.text;
            for (const s of chunker.push(delta.text)) {
              if (firstSentence && round === 0) u.latency.llmFirstSentenceMs ??= round2(epochNow() - requestedAt);
              firstSentence = false;
              sentences.push(s);
            }
            break;
          case 'tool_call':
            toolCalls.push(delta.call);
            break;
          case 'usage':
            this.deps.usage.add({ meter: 'llm_input_tokens', provider: 'openai', model: delta.model, quantity: delta.inputTokens });
            this.deps.usage.add({ meter: 'llm_output_tokens', provider: 'openai', model: delta.model, quantity: delta.outputTokens });
            break;
          case 'done':
            break;
          default: {
            const never: never = delta;
            throw new Error(`unknown LLM delta ${JSON.stringify(never)}`);
          }
        }
      }
      for (const s of chunker.flush()) {
        if (firstSentence && round === 0) u.latency.llmFirstSentenceMs ??= round2(epochNow() - requestedAt);
        firstSentence = false;
        sentences.push(s);
      }
    } catch (err) {
      sentences.end();
      throw err;
    }
    sentences.end();
    await speaking;
    if (ttsError) throw ttsError;
    entry.content = text.trim();
    if (toolCalls.length > 0) entry.toolCalls = toolCalls;
    if (!entry.content && toolCalls.length === 0) this.history.splice(this.history.indexOf(entry), 1);
    return { text, toolCalls };
  }

  // Speaks chunks in order as they come; TTS runs ahead of playback, the pacer keeps real time.
  private async speakAll(u: Utterance, sentences: AsyncIterable<string>, round: number | null, endOfSpeechAt: number | null): Promise<void> {
    for await (const sentence of sentences) {
      if (u.signal.aborted) return;
      await this.speakChunk(u, sentence, round, endOfSpeechAt);
    }
  }

  private async speakChunk(u: Utterance, text: string, round: number | null, endOfSpeechAt: number | null): Promise<void> {
    const { agent, tts, voice } = this.deps;
    const started = epochNow();
    let any = false;
    for await (const audio of tts.synthesize(text, { voice: agent.voice.voiceId, speakerId: agent.voice.speakerId, speed: agent.voice.speed, signal: u.signal })) {
      if (u.signal.aborted) return;
      if (!u.hasAudio) this.onFirstAudio(u, epochNow() - started, endOfSpeechAt);
      any = true;
      voice.play(audio);
      u.queuedAudioMs += audio.length / 8;
    }
    if (u.signal.aborted || !any) return;
    this.deps.usage.add({ meter: 'tts_characters', provider: tts.name, quantity: text.length });
    voice.mark(u.addChunk(text, round));
  }

  private onFirstAudio(u: Utterance, ttsFirstByteMs: number, endOfSpeechAt: number | null): void {
    u.firstAudioAt = epochNow();
    u.latency.ttsFirstByteMs = round2(ttsFirstByteMs);
    const providerMs = (u.latency.sttFinalMs ?? 0) + (u.latency.llmFirstSentenceMs ?? 0) + ttsFirstByteMs;
    this.awaitingFrame = { u, endOfSpeechAt, providerMs };
    u.recordSeq = ++this.seq;
    u.turnId = this.record({
      organizationId: this.deps.organizationId,
      callId: this.deps.callId,
      seq: u.recordSeq,
      role: 'assistant',
      kind: u.kind,
      text: '',
      startedAt: new Date(),
    });
  }

  private async runTool(u: Utterance, call: ToolCall): Promise<Awaited<ReturnType<ToolRunner['run']>>> {
    const { tools } = this.deps;
    const configured = tools.fillerFor(call.name);
    let filler: NodeJS.Timeout | null = null;
    const sayFiller = () => void this.speakChunk(u, configured ?? LINES.filler, null, null).catch(() => {});
    if (call.name !== 'end_call') {
      if (configured) sayFiller();
      else filler = setTimeout(sayFiller, FILLER_AFTER_MS);
    }
    try {
      const outcome = await tools.run(call, u.signal);
      const ms = outcome.kind === 'result' ? outcome.ms : 0;
      const ok = outcome.kind !== 'result' || outcome.ok;
      this.deps.publish({ type: 'call.tool', name: call.name, ok, ms: round(ms) });
      const now = new Date();
      this.record({
        organizationId: this.deps.organizationId,
        callId: this.deps.callId,
        seq: ++this.seq,
        role: 'tool',
        kind: 'tool_call',
        text: outcome.content.slice(0, 2000),
        startedAt: new Date(now.getTime() - ms),
        endedAt: now,
        detail: { name: call.name, arguments: call.arguments.slice(0, 2000), ok, ms: round(ms), ...(outcome.kind === 'result' && outcome.status ? { status: outcome.status } : {}) },
      });
      return outcome;
    } finally {
      if (filler) clearTimeout(filler);
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
    if (kind === 'first_message') this.history.push({ role: 'assistant', content: text });
    const entry = this.history.at(-1);
    if (kind === 'first_message' && entry?.role === 'assistant') u.historyEntries.set(0, entry);
    const sentences = new AsyncQueue<string>();
    const chunker = new SentenceChunker();
    for (const s of [...chunker.push(text), ...chunker.flush()]) sentences.push(s);
    sentences.end();
    try {
      await this.speakAll(u, sentences, kind === 'first_message' ? 0 : null, null);
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
    u.finish();
    if (u.hasAudio) {
      this.updateTurn(u, { text: u.spokenText, endedAt: new Date(), latency: u.latency });
      this.deps.publish({ type: 'call.transcript', role: 'assistant', text: u.spokenText, final: true, seq: u.recordSeq ?? undefined });
    }
    if (!this.ending) this.armSilence();
  }

  private interrupt(u: Utterance): void {
    if (this.active === u) this.active = null;
    if (this.awaitingFrame?.u === u) this.awaitingFrame = null;
    u.interrupt(this.history);
    if (!u.hasAudio) return;
    const heardText = u.heardText;
    this.updateTurn(u, { text: heardText, interrupted: true, endedAt: new Date(), latency: u.latency });
    this.deps.publish({ type: 'call.interrupted', seq: u.recordSeq ?? 0, heardText });
    this.deps.publish({ type: 'call.transcript', role: 'assistant', text: heardText, final: true, seq: u.recordSeq ?? undefined, interrupted: true });
  }

  // Stops an utterance for a goodbye: the audio is cleared so the goodbye is not queued behind it.
  private interruptQuietly(u: Utterance): void {
    if (u.hasAudio) this.deps.voice.clear();
    this.interrupt(u);
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
    if (this.active) this.interruptQuietly(this.active);
    if (provider !== this.deps.tts.name) {
      const u = await this.say(LINES.apology, 'goodbye');
      await this.waitHeard(u);
    }
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

  private async onSilence(): Promise<void> {
    this.silenceTimer = null;
    if (this.ending || this.active || this.detector.callerSpeaking || this.detector.pendingText) return;
    this.reprompts++;
    if (this.reprompts === 1) {
      await this.say(LINES.reprompt, 'reprompt');
      return;
    }
    this.ending = true;
    const u = await this.say(LINES.silenceGoodbye, 'goodbye');
    await this.waitHeard(u);
    this.deps.end('silence_timeout');
  }

  private record(turn: NewTurn): Promise<string | null> {
    const write = this.records.then(() => this.deps.turns.add(turn));
    this.records = write.catch((err: unknown) => this.deps.log.error({ err, callId: this.deps.callId }, 'could not record turn'));
    return write.catch(() => null);
  }

  private updateTurn(u: Utterance, patch: TurnUpdate): void {
    const id = u.turnId;
    if (!id) return;
    this.records = this.records
      .then(async () => {
        const turnId = await id;
        if (turnId) await this.deps.turns.update(turnId, patch);
      })
      .catch((err: unknown) => this.deps.log.error({ err, callId: this.deps.callId }, 'could not update turn'));
  }

  private flushUsage(): void {
    const seconds = this.stt?.audioSeconds ?? 0;
    if (seconds > this.sttSecondsFlushed) {
      this.deps.usage.add({ meter: 'stt_seconds', provider: this.deps.stt.name, model: this.deps.agent.stt.model, quantity: seconds - this.sttSecondsFlushed });
      this.sttSecondsFlushed = seconds;
    }
    this.records = this.records.then(() => this.deps.usage.flush()).catch((err: unknown) => this.deps.log.error({ err }, 'could not record usage'));
  }

  /** Ends the conversation: closes the STT, records the unfinished turn, writes the remaining usage. */
  close(): void {
    this.detector.close();
    this.disarmSilence();
    if (this.amdTimer) clearTimeout(this.amdTimer);
    if (this.dtmfTimer) clearTimeout(this.dtmfTimer);
    const u = this.active;
    if (u) {
      this.active = null;
      u.abort(new Error('call ended'));
      if (u.hasAudio) this.updateTurn(u, { text: u.heardText, interrupted: !u.allHeard, endedAt: new Date(), latency: u.latency });
    }
    this.stt?.close();
    this.flushUsage();
  }

  /** Resolves when every turn and usage write so far has finished (tests, shutdown). */
  async settled(): Promise<void> {
    for (;;) {
      const pending = this.records;
      await pending;
      if (pending === this.records) return;
    }
  }
}

const round = (ms: number): number => Math.round(ms);
const round2 = (ms: number): number => Math.round(ms * 100) / 100;
