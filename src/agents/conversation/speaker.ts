import type { LlmDelta, ToolCall, TtsCharTimings } from '../../media/providers.js';
import { epochNow } from '../../media/media-engine.js';
import { AsyncQueue } from '../../shared/async-queue.js';
import type { ChatHistory } from './chat-history.js';
import type { ConversationDeps } from './conversation-deps.js';
import { LINES } from './lines.js';
import { SentenceChunker } from './sentence-chunker.js';
import type { PreemptiveRequest } from './preemption.js';
import type { ToolOutcome } from './tools.js';
import type { TurnLog } from './turn-log.js';
import type { Utterance } from './utterance.js';

/** How the conversation lets the speaker record turns and show that it speaks. */
export interface SpeakerHooks {
  /** The call's record (turn rows, usage, first-frame timing). */
  log: TurnLog;
  /** Audio of the agent is on its way to the caller. */
  speaking(): void;
}

/** How an answer ended, when nobody cut it off. */
export type AnswerOutcome = { kind: 'done' } | { kind: 'hang_up'; reason?: string } | { kind: 'transferred' };

/** Hands the call over once the caller heard the agent; false when the carrier refused. */
export type TransferHook = (to: string, summary: string | undefined) => Promise<boolean>;

// A slow tool gets a filler line after this long (at once when the agent configured one for the tool).
const FILLER_AFTER_MS = 700;
// Tool round trips per caller turn; a model stuck calling tools must still answer.
const MAX_TOOL_ROUNDS = 5;

type SpeakerDeps = Pick<ConversationDeps, 'agent' | 'llm' | 'tts' | 'tools' | 'voice' | 'publish'>;

/**
 * Produces what the agent says: LLM rounds (with tools) streamed into the sentence chunker, each chunk
 * through TTS to the caller's voice with a mark behind it, usage metered, latency parts timed. Whether
 * and when to stop is the conversation's business: it aborts the utterance's signal.
 */
export class Speaker {
  constructor(
    private readonly deps: SpeakerDeps,
    private readonly history: ChatHistory,
    private readonly systemPrompt: string,
    private readonly hooks: SpeakerHooks,
  ) {}

  /**
   * Answers the caller's last turn: up to MAX_TOOL_ROUNDS LLM rounds, tools run between them. The first
   * round reads `preempted` (a request started on these words before the turn was confirmed) when given.
   */
  async answer(u: Utterance, endOfSpeechAt: number | null, transfer: TransferHook, preempted: PreemptiveRequest | null = null): Promise<AnswerOutcome> {
    for (let round = 0; round < MAX_TOOL_ROUNDS; round++) {
      const { toolCalls } = await this.generate(u, round, endOfSpeechAt, round === 0 ? preempted : null);
      if (u.signal.aborted || toolCalls.length === 0) return { kind: 'done' };
      let hangUp: { reason?: string } | null = null;
      for (const call of toolCalls) {
        let outcome = await this.runTool(u, call);
        if (u.signal.aborted) return { kind: 'done' };
        if (outcome.kind === 'transfer') {
          if (await transfer(outcome.to, outcome.summary)) return { kind: 'transferred' };
          outcome = { kind: 'result', ok: false, content: JSON.stringify({ error: 'the transfer failed; tell the caller and offer something else' }), ms: 0 };
        }
        this.history.addTool(call.id, outcome.content);
        if (outcome.kind === 'end_call') hangUp = { reason: outcome.reason };
      }
      if (hangUp) return { kind: 'hang_up', reason: hangUp.reason };
    }
    return { kind: 'done' };
  }

  /** Says a fixed line; a first message goes into the history as the assistant's opening. */
  async sayLine(u: Utterance, text: string, firstMessage: boolean): Promise<void> {
    if (firstMessage) u.historyEntries.set(0, this.history.addAssistant(text));
    const sentences = new AsyncQueue<string>();
    const chunker = new SentenceChunker();
    for (const s of [...chunker.push(text), ...chunker.flush()]) sentences.push(s);
    sentences.end();
    await this.speakAll(u, sentences, firstMessage ? 0 : null, null);
  }

  // One LLM round: streams text into the chunker and the chunks into TTS while the model still writes.
  private async generate(u: Utterance, round: number, endOfSpeechAt: number | null, preempted: PreemptiveRequest | null): Promise<{ toolCalls: ToolCall[] }> {
    const { agent } = this.deps;
    const messages = this.history.forRequest(this.systemPrompt);
    const entry = this.history.addAssistant();
    u.historyEntries.set(round, entry);

    const sentences = new AsyncQueue<string>();
    let ttsError: unknown = null;
    const speaking = this.speakAll(u, sentences, round, endOfSpeechAt).catch((err: unknown) => {
      ttsError = err;
    });
    const chunker = new SentenceChunker();
    // A preempted request was sent earlier: its head start is what it saves, so the clock starts now.
    const requestedAt = epochNow();
    let text = '';
    let firstSentence = true;
    const toolCalls: ToolCall[] = [];
    const tools = this.deps.tools.specs();
    const pushSentences = (chunks: string[]) => {
      for (const s of chunks) {
        if (firstSentence && round === 0) u.latency.llmFirstSentenceMs ??= round2(epochNow() - requestedAt);
        firstSentence = false;
        sentences.push(s);
      }
    };
    try {
      // Iterated to its end even after a barge-in: a cut stream still reports the tokens it used.
      const stream: AsyncIterable<LlmDelta> =
        preempted?.matches(messages) === true ? preempted.take(u.signal) : this.deps.llm.chat({ messages, ...llmRequest(agent, tools) }, u.signal);
      for await (const delta of stream) {
        if (ttsError) throw ttsError;
        switch (delta.kind) {
          case 'text':
            if (!text && round === 0) u.latency.llmFirstTokenMs ??= round2(epochNow() - requestedAt);
            text += delta.text;
            if (!u.signal.aborted) pushSentences(chunker.push(delta.text));
            break;
          case 'tool_call':
            toolCalls.push(delta.call);
            break;
          case 'usage':
            this.hooks.log.meterLlm(delta);
            break;
          case 'done':
            break;
          default: {
            const never: never = delta;
            throw new Error(`unknown LLM delta ${JSON.stringify(never)}`);
          }
        }
      }
      if (!u.signal.aborted) pushSentences(chunker.flush());
    } finally {
      sentences.end();
    }
    await speaking;
    if (ttsError) throw ttsError;
    // A barge-in has already cut this round's entry to what the caller heard.
    if (u.signal.aborted) return { toolCalls: [] };
    entry.content = text.trim();
    if (toolCalls.length > 0) entry.toolCalls = toolCalls;
    if (!entry.content && toolCalls.length === 0) this.history.remove(entry);
    return { toolCalls };
  }

  // Speaks chunks in order as they come; TTS runs ahead of playback, the pacer keeps real time.
  private async speakAll(u: Utterance, sentences: AsyncIterable<string>, round: number | null, endOfSpeechAt: number | null): Promise<void> {
    let said = '';
    for await (const sentence of sentences) {
      if (u.signal.aborted) return;
      await this.speakChunk(u, sentence, round, endOfSpeechAt, said);
      said = said ? `${said} ${sentence}` : sentence;
    }
  }

  private async speakChunk(u: Utterance, text: string, round: number | null, endOfSpeechAt: number | null, previousText = ''): Promise<void> {
    const { agent, tts, voice } = this.deps;
    const started = epochNow();
    let chunk: ReturnType<Utterance['startChunk']> | null = null;
    // When each character's sound ends, from TTSs that say (they come ahead of their audio).
    const charEndsMs: number[] = [];
    const onTimings = (t: TtsCharTimings) => void charEndsMs.push(...t.endsMs);
    for await (const audio of tts.synthesize(text, { voice: agent.voice.voiceId, speakerId: agent.voice.speakerId, speed: agent.voice.speed, signal: u.signal, onTimings, ...(previousText ? { previousText } : {}) })) {
      if (u.signal.aborted) return;
      if (!u.hasAudio) this.onFirstAudio(u, epochNow() - started, endOfSpeechAt);
      // Where this chunk starts on the caller's timeline: what a barge-in compares the played time with.
      chunk ??= u.startChunk(text, round, voice.queuedMs, charEndsMs);
      voice.play(audio);
      chunk.audioMs += audio.length / 8;
      u.queuedAudioMs += audio.length / 8;
      this.hooks.speaking();
    }
    if (u.signal.aborted || !chunk) return;
    this.hooks.log.meter({ meter: 'tts_characters', provider: tts.name, quantity: text.length });
    voice.mark(u.completeChunk(chunk));
  }

  private onFirstAudio(u: Utterance, ttsFirstByteMs: number, endOfSpeechAt: number | null): void {
    u.firstAudioAt = epochNow();
    u.latency.ttsFirstByteMs = round2(ttsFirstByteMs);
    const providerMs = (u.latency.sttFinalMs ?? 0) + (u.latency.llmFirstSentenceMs ?? 0) + ttsFirstByteMs;
    this.hooks.log.answerStarted(u, endOfSpeechAt, providerMs);
  }

  private async runTool(u: Utterance, call: ToolCall): Promise<ToolOutcome> {
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
      this.hooks.log.toolTurn(outcome.content.slice(0, 2000), ms, {
        name: call.name,
        arguments: call.arguments.slice(0, 2000),
        ok,
        ms: round(ms),
        ...(outcome.kind === 'result' && outcome.status ? { status: outcome.status } : {}),
      });
      return outcome;
    } finally {
      if (filler) clearTimeout(filler);
    }
  }
}

/** The settings of an answer's LLM requests (a preemptive one sends the same). */
export function llmRequest(agent: ConversationDeps['agent'], tools: ReturnType<ConversationDeps['tools']['specs']>): Omit<Parameters<ConversationDeps['llm']['chat']>[0], 'messages'> {
  return { tools: tools.length ? tools : undefined, temperature: agent.llm.temperature, maxTokens: agent.llm.maxTokens };
}

const round = (ms: number): number => Math.round(ms);
const round2 = (ms: number): number => Math.round(ms * 100) / 100;
