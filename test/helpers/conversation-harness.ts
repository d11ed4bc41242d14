// An in-memory harness for the conversation engine: scripted STT events and VAD edges in, LLM tokens and
// TTS chunks with timings, a fake clock (vitest's timers, Date and performance), and a voice that records
// what would have been played and when. Turn-taking rules run in milliseconds, without sockets or a database.
import type { FastifyBaseLogger } from 'fastify';
import { Registry } from 'prom-client';
import { vi } from 'vitest';
import { AGENT_DEFAULTS } from '../../src/agents/agents.service.js';
import type { Agent } from '../../src/agents/agents.schemas.js';
import { Conversation } from '../../src/agents/conversation/conversation.js';
import type { ChatModel } from '../../src/agents/conversation/conversation-deps.js';
import type { VoiceOut } from '../../src/agents/conversation/responder.js';
import { ToolRunner } from '../../src/agents/conversation/tools.js';
import type { TurnStore, UsageSink } from '../../src/agents/conversation/turn-log.js';
import type { UsageItem } from '../../src/billing/usage.service.js';
import type { NewTurn, TurnUpdate } from '../../src/calls/call-turns.service.js';
import type { CallEventInput } from '../../src/calls/call-events.js';
import type { EndReason } from '../../src/calls/calls.table.js';
import type { ChatMessage, LlmDelta, SttEvent, SttProvider, SttStream, TtsProvider } from '../../src/media/providers.js';
import { encodeMulawSample } from '../../src/media/audio/mulaw.js';
import { AsyncQueue } from '../../src/shared/async-queue.js';
import { CallLatencies } from '../../src/telephony/call-latency.js';

/** How the fake LLM answers: its text, split into tokens, with timings. */
// A 400 Hz tone at about -10 dBFS (voice by the level rule) and digital silence, one 20 ms frame each.
const VOICED_FRAME = Uint8Array.from({ length: 160 }, (_, i) => encodeMulawSample(Math.round(10000 * Math.sin((2 * Math.PI * 400 * i) / 8000))));
const SILENT_FRAME = new Uint8Array(160).fill(0xff);

export interface LlmScript {
  reply: string;
  /** Request to the first token. Default 300 ms. */
  firstTokenMs?: number;
  /** Between tokens. Default 25 ms. */
  perTokenMs?: number;
}

/** One request the fake LLM received. */
export interface LlmCall {
  /** The caller's last message as sent. */
  userText: string;
  messages: ChatMessage[];
  /** Clock (ms since the harness began) at which it was sent. */
  at: number;
  signal: AbortSignal;
  /** Text tokens it yielded. */
  yielded: string[];
}

/** One piece of agent audio handed to the caller's line. */
export interface Played {
  /** Clock (ms since the harness began) at which it was queued. */
  at: number;
  bytes: number;
}

/** Options of the harness. */
export interface HarnessOptions {
  agent?: Partial<Agent>;
  llm?: LlmScript;
  /** Text to first audio byte of the fake TTS. Default 100 ms. */
  ttsFirstByteMs?: number;
}

const BYTES_PER_MS = 8; // 8 kHz mu-law
const AUDIO_MS_PER_CHAR = 60;

/** Every recorded effect of one conversation, and the knobs to drive it. */
export class ConversationHarness {
  readonly conversation: Conversation;
  readonly agent: Agent;
  readonly latencies = new CallLatencies(new Registry());
  readonly llmCalls: LlmCall[] = [];
  readonly played: Played[] = [];
  readonly turns: Array<NewTurn & { id: string; updates: TurnUpdate[] }> = [];
  readonly usage: UsageItem[] = [];
  readonly events: CallEventInput[] = [];
  readonly ended: Array<{ reason: EndReason; detail?: string }> = [];
  readonly warnings: unknown[] = [];
  /** How many times the engine asked the STT to finalize (Deepgram `Finalize`). */
  finalizes = 0;
  llmScript: LlmScript;
  private readonly t0 = Date.now();
  private readonly stt = new AsyncQueue<SttEvent>();
  private readonly controller = new AbortController();
  private queuedMs = 0;
  private playStartedAt: number | null = null;

  constructor(options: HarnessOptions = {}) {
    this.llmScript = options.llm ?? { reply: 'Sure, I can help with that.' };
    const agent: Agent = (this.agent = {
      id: 'agt_harness',
      object: 'agent',
      name: 'harness',
      ...AGENT_DEFAULTS,
      promptVariables: [],
      createdAt: new Date(0).toISOString(),
      updatedAt: new Date(0).toISOString(),
      ...options.agent,
    });
    this.conversation = new Conversation({
      callId: 'call_harness',
      organizationId: 'org_harness',
      agent,
      variables: {},
      stt: this.sttProvider(),
      llm: this.chatModel(),
      tts: this.ttsProvider(options.ttsFirstByteMs ?? 100),
      tools: new ToolRunner([]),
      turns: this.turnStore(),
      usage: this.usageSink(),
      voice: this.voice(),
      latencies: this.latencies,
      log: this.logger(),
      signal: this.controller.signal,
      publish: (e) => void this.events.push(e),
      end: (reason, detail) => void this.ended.push({ reason, detail }),
    });
  }

  /** Installs the fake clock; call before constructing a harness. */
  static useFakeClock(): void {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] });
  }

  /** A recorded instant as ms since the harness began. */
  msOf(date: Date): number {
    return date.getTime() - this.t0;
  }

  /** Ms since the harness began. */
  get now(): number {
    return Date.now() - this.t0;
  }

  /** Starts the conversation (greets when the agent has a first message). */
  start(): void {
    this.conversation.start();
  }

  /** Moves the clock on, running every timer and stream step due. */
  async advance(ms: number): Promise<void> {
    await vi.advanceTimersByTimeAsync(ms);
  }

  /** VAD: the caller started talking at stream time `atMs` (stream time = harness clock). */
  speechStart(atMs = this.now): void {
    this.conversation.onSpeechStart(atMs, performance.timeOrigin + performance.now());
  }

  /** VAD: the caller stopped talking at stream time `atMs`. */
  speechEnd(atMs = this.now): void {
    this.conversation.onSpeechEnd(atMs, performance.timeOrigin + performance.now());
  }

  /**
   * The caller's audio from the clock's now to stream time `toMs`, in 20 ms frames, loud (voice by the
   * level rule) or digital silence; the clock moves with it.
   */
  async audio(voiced: boolean, toMs: number): Promise<void> {
    const frame = voiced ? VOICED_FRAME : SILENT_FRAME;
    while (this.now + 20 <= toMs) {
      await this.advance(20);
      this.conversation.onAudio(frame);
    }
  }

  /** VAD, inside speech: its model hears a pause from stream time `atMs` (or, with `quiet` false, voice again). */
  speechQuiet(atMs: number, quiet = true): void {
    this.conversation.onSpeechQuiet(atMs, quiet);
  }

  /** STT: an interim transcript. */
  interim(text: string, startMs: number, endMs: number): void {
    this.stt.push({ kind: 'interim', text, start: startMs / 1000, end: endMs / 1000 });
  }

  /** STT: a final transcript of audio from `startMs` to `endMs` (stream time). */
  final(text: string, startMs: number, endMs: number, speechFinal = false): void {
    this.stt.push({ kind: 'final', text, start: startMs / 1000, end: endMs / 1000, speechFinal });
  }

  /** Caller turns recorded, in order. */
  get callerTurns(): Array<NewTurn & { id: string }> {
    return this.turns.filter((t) => t.role === 'user');
  }

  /** When the agent's first audio after clock `fromMs` was queued, or null. */
  firstAudioAfter(fromMs: number): number | null {
    return this.played.find((p) => p.at >= fromMs)?.at ?? null;
  }

  /** Usage by meter, summed. */
  usageOf(meter: UsageItem['meter']): number {
    return this.usage.filter((u) => u.meter === meter).reduce((sum, u) => sum + u.quantity, 0);
  }

  /** Ends the call and waits for every write. */
  async close(): Promise<void> {
    this.controller.abort(new Error('call ended'));
    await this.advance(0);
    await this.conversation.settled();
  }

  private sttProvider(): SttProvider {
    const queue = this.stt;
    const stream: SttStream = {
      ready: Promise.resolve(),
      push: () => {},
      flush: () => void this.finalizes++,
      endInput: () => queue.end(),
      close: () => queue.end(),
      audioSeconds: 0,
      [Symbol.asyncIterator]: () => queue[Symbol.asyncIterator](),
    };
    return { name: 'fake-stt', stream: () => stream };
  }

  private chatModel(): ChatModel {
    return { chat: (request, signal) => this.llmStream(request.messages, signal) };
  }

  private async *llmStream(messages: ChatMessage[], signal: AbortSignal): AsyncIterable<LlmDelta> {
    const script = this.llmScript;
    const user = [...messages].reverse().find((m) => m.role === 'user');
    const call: LlmCall = { userText: user?.content ?? '', messages, at: this.now, signal, yielded: [] };
    this.llmCalls.push(call);
    const inputTokens = messages.reduce((n, m) => n + m.content.split(/\s+/).length, 0);
    const tokens = script.reply.split(/(?<=\s)/);
    let wait = script.firstTokenMs ?? 300;
    for (const token of tokens) {
      if (!(await sleep(wait, signal))) break;
      call.yielded.push(token);
      yield { kind: 'text', text: token };
      wait = script.perTokenMs ?? 25;
    }
    // Like the fallback LLM: a cut stream still reports what it used, estimated.
    yield { kind: 'usage', provider: 'fake-llm', model: 'fake', inputTokens, outputTokens: call.yielded.length, estimated: signal.aborted };
    if (!signal.aborted) yield { kind: 'done', finishReason: 'stop' };
  }

  private ttsProvider(firstByteMs: number): TtsProvider {
    return {
      name: 'fake-tts',
      async *synthesize(text, options) {
        if (!(await sleep(firstByteMs, options.signal))) return;
        yield new Uint8Array(text.length * AUDIO_MS_PER_CHAR * BYTES_PER_MS);
      },
    };
  }

  private voice(): VoiceOut {
    const queued = () => this.queuedMs;
    return {
      play: (audio) => {
        this.played.push({ at: this.now, bytes: audio.length });
        this.playStartedAt ??= this.now;
        this.queuedMs += audio.length / BYTES_PER_MS;
        this.conversation.onFrameSent();
      },
      mark: (name) => {
        // Twilio echoes a mark once the audio before it has played.
        const due = Math.max(0, this.queuedMs - this.playedMs());
        setTimeout(() => this.conversation.onMark(name), due);
      },
      clear: () => {
        this.queuedMs = this.playedMs();
      },
      get queuedMs() {
        return queued();
      },
      playedMs: () => this.playedMs(),
    };
  }

  private playedMs(): number {
    if (this.playStartedAt === null) return 0;
    return Math.min(this.queuedMs, this.now - this.playStartedAt);
  }

  private turnStore(): TurnStore {
    let n = 0;
    return {
      add: async (turn) => {
        const id = `turn_${++n}`;
        this.turns.push({ ...turn, id, updates: [] });
        return id;
      },
      update: async (id, patch) => {
        this.turns.find((t) => t.id === id)?.updates.push(patch);
      },
    };
  }

  private usageSink(): UsageSink {
    return {
      add: (item) => void this.usage.push(item),
      flush: async () => {},
    };
  }

  private logger(): FastifyBaseLogger {
    const record = (obj: unknown) => void this.warnings.push(obj);
    const noop = () => {};
    const log = { level: 'warn', fatal: record, error: record, warn: record, info: noop, debug: noop, trace: noop, silent: noop, child: () => log };
    return log as unknown as FastifyBaseLogger;
  }
}

// Resolves true after `ms`, or false as soon as `signal` aborts.
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
