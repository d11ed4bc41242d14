import type { FastifyBaseLogger } from 'fastify';
import type { UsageItem, UsageMeterBuffer } from '../../billing/usage.service.js';
import type { CallTurnsService, NewTurn, TurnUpdate } from '../../calls/call-turns.service.js';
import type { LlmDelta } from '../../media/providers.js';
import { epochNow } from '../../media/media-engine.js';
import type { CallLatencies } from '../../telephony/call-latency.js';
import type { Utterance } from './utterance.js';

/** Where turn rows go (the call's transcript table, or memory in the engine's harness). */
export type TurnStore = Pick<CallTurnsService, 'add' | 'update'>;
/** Where usage goes until it is flushed. */
export type UsageSink = Pick<UsageMeterBuffer, 'add' | 'flush'>;

/** What the turn log writes to. */
export interface TurnLogDeps {
  callId: string;
  organizationId: string;
  turns: TurnStore;
  usage: UsageSink;
  latencies: CallLatencies;
  log: FastifyBaseLogger;
}

/** How a caller turn's answer used preemptive generation. */
export interface PreemptionCount {
  /** 1 when the answer came from a request started before the turn was confirmed. */
  used: number;
  /** Requests started on a pause the caller went on after, or on words the final transcript changed. */
  discarded: number;
}

/**
 * The call's record as it happens: turn rows, usage, and the timing of each answer's first frame, written
 * in order and off the hot path. One failing write is logged and does not stop the next. The engine says
 * what happened; this class alone knows how it is written down.
 */
export class TurnLog {
  private chain: Promise<unknown> = Promise.resolve();
  private seq = 0;
  // The answer whose first outbound frame is still to be timed, with its end-of-speech instant.
  private awaitingFrame: { u: Utterance; endOfSpeechAt: number | null; providerMs: number } | null = null;
  private sttSecondsFlushed = 0;

  constructor(private readonly deps: TurnLogDeps) {}

  /** The next `seq` of the call's transcript. */
  nextSeq(): number {
    return ++this.seq;
  }

  /** Records what the caller said (or keyed); returns its `seq`. */
  callerTurn(kind: 'speech' | 'dtmf', text: string, preemption?: PreemptionCount): number {
    const seq = this.nextSeq();
    const now = new Date();
    void this.add({ ...this.ids(), seq, role: 'user', kind, text, startedAt: now, endedAt: now, ...(preemption ? { detail: { preemption } } : {}) });
    return seq;
  }

  /**
   * The first audio of an agent utterance is queued: its row is opened (text filled when it ends) and its
   * first outbound frame will close the answer's response time.
   */
  answerStarted(u: Utterance, endOfSpeechAt: number | null, providerMs: number): void {
    this.awaitingFrame = { u, endOfSpeechAt, providerMs };
    u.recordSeq = this.nextSeq();
    u.turnId = this.add({ ...this.ids(), seq: u.recordSeq, role: 'assistant', kind: u.kind, text: '', startedAt: new Date() });
  }

  /** An agent utterance ended (heard, cut off, or the call ended): what the caller heard, and its timings. */
  answerEnded(u: Utterance, patch: TurnUpdate): void {
    this.update(u.turnId, patch);
  }

  /** A tool call and its result. */
  toolTurn(text: string, ms: number, detail: Record<string, unknown>): void {
    const now = new Date();
    void this.add({ ...this.ids(), seq: this.nextSeq(), role: 'tool', kind: 'tool_call', text, startedAt: new Date(now.getTime() - ms), endedAt: now, detail });
  }

  /** An audio frame went out: the first one of an answer ends its response time. */
  onFrameSent(): void {
    const pending = this.awaitingFrame;
    if (!pending) return;
    this.awaitingFrame = null;
    if (pending.endOfSpeechAt === null) return;
    const { u } = pending;
    const l = u.latency;
    const now = epochNow();
    const responseMs = now - pending.endOfSpeechAt;
    // From the turn's confirmation when known: the end-of-turn wait (VAD silence, STT final, a capped wait) is not ours.
    const overheadMs = Math.max(0, u.turnConfirmedAt !== null ? now - u.turnConfirmedAt - (l.llmFirstSentenceMs ?? 0) - (l.ttsFirstByteMs ?? 0) : responseMs - pending.providerMs);
    l.firstFrameOutMs = Math.round(responseMs);
    l.overheadMs = Math.round(overheadMs);
    if (l.llmFirstTokenMs !== undefined && l.llmFirstSentenceMs !== undefined) l.firstChunkMs = Math.round(Math.max(0, l.llmFirstSentenceMs - l.llmFirstTokenMs) * 100) / 100;
    const callerWaitMs = u.callerVoiceEndedAt === null ? null : now - u.callerVoiceEndedAt;
    if (callerWaitMs !== null) l.callerWaitMs = Math.round(callerWaitMs);
    this.deps.latencies.turn(responseMs, overheadMs, callerWaitMs);
  }

  /** The utterance was cut off: its first frame is not an answer to time. */
  forget(u: Utterance): void {
    if (this.awaitingFrame?.u === u) this.awaitingFrame = null;
  }

  /** Meters one item of usage (written at the next flush). */
  meter(item: UsageItem): void {
    this.deps.usage.add(item);
  }

  /** Meters what an LLM stream reported it used (estimated when the provider did not say). */
  meterLlm(delta: Extract<LlmDelta, { kind: 'usage' }>): void {
    const [input, output] = delta.estimated ? (['llm_input_tokens_estimated', 'llm_output_tokens_estimated'] as const) : (['llm_input_tokens', 'llm_output_tokens'] as const);
    this.meter({ meter: input, provider: delta.provider, model: delta.model, quantity: delta.inputTokens });
    this.meter({ meter: output, provider: delta.provider, model: delta.model, quantity: delta.outputTokens });
  }

  /** Writes the usage gathered so far (with the STT's audio seconds up to now), after the records before it. */
  flushUsage(stt?: { seconds: number; provider: string; model: string }): void {
    if (stt && stt.seconds > this.sttSecondsFlushed) {
      this.meter({ meter: 'stt_seconds', provider: stt.provider, model: stt.model, quantity: stt.seconds - this.sttSecondsFlushed });
      this.sttSecondsFlushed = stt.seconds;
    }
    this.chain = this.chain.then(() => this.deps.usage.flush()).catch((err: unknown) => this.deps.log.error({ err }, 'could not record usage'));
  }

  /** Resolves when every write so far has finished (tests, shutdown). */
  async settled(): Promise<void> {
    for (;;) {
      const pending = this.chain;
      await pending;
      if (pending === this.chain) return;
    }
  }

  private ids(): { organizationId: string; callId: string } {
    return { organizationId: this.deps.organizationId, callId: this.deps.callId };
  }

  // Records a turn; resolves with its id (null when the write failed).
  private add(turn: NewTurn): Promise<string | null> {
    const write = this.chain.then(() => this.deps.turns.add(turn));
    this.chain = write.catch((err: unknown) => this.deps.log.error({ err, callId: this.deps.callId }, 'could not record turn'));
    return write.catch(() => null);
  }

  // Updates the turn `id` will name, once it exists.
  private update(id: Promise<string | null> | null, patch: TurnUpdate): void {
    if (!id) return;
    this.chain = this.chain
      .then(async () => {
        const turnId = await id;
        if (turnId) await this.deps.turns.update(turnId, patch);
      })
      .catch((err: unknown) => this.deps.log.error({ err, callId: this.deps.callId }, 'could not update turn'));
  }
}
