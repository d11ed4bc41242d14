import type { TurnLatency } from '../../calls/calls.table.js';
import type { AssistantEntry, ChatHistory } from './chat-history.js';
import { heardPart, type SpokenChunk } from './heard-text.js';

/** What an agent utterance is: an answer, or one of the lines the engine says by itself. */
export type UtteranceKind = 'speech' | 'dtmf' | 'first_message' | 'reprompt' | 'goodbye';

/** One spoken chunk, in the order its mark was sent. `round` is the LLM round it came from (null: a filler). */
interface Chunk extends SpokenChunk {
  round: number | null;
}

/**
 * One thing the agent says (possibly across several LLM rounds with tool calls in between). It owns the
 * turn's AbortSignal and keeps, per chunk, where its audio sits on the caller's timeline and whether
 * Twilio's mark proved the caller heard it, so a barge-in can tell what the caller heard.
 */
export class Utterance {
  private readonly controller = new AbortController();
  private readonly chunks: Chunk[] = [];
  /** How many chunks the caller has heard (marks echoed in order). */
  heard = 0;
  /** Audio queued for this utterance, ms. */
  queuedAudioMs = 0;
  interrupted = false;
  /** No more chunks will be added. */
  generationDone = false;
  /** Set when the first audio of this utterance was handed to the outbound queue. */
  firstAudioAt: number | null = null;
  /** Assistant messages this utterance added to history, by LLM round, so barge-in can cut them. */
  readonly historyEntries = new Map<number, AssistantEntry>();
  /** An answer to speech: when the caller's last voiced frame arrived, and when the turn was confirmed (epoch ms). */
  callerVoiceEndedAt: number | null = null;
  turnConfirmedAt: number | null = null;
  /** Latency parts measured for this utterance. */
  readonly latency: TurnLatency = {};
  /** The turn's `seq` in the call's transcript, once it has audio (and so a row). */
  recordSeq: number | null = null;
  /** The call_turns row once it exists. */
  turnId: Promise<string | null> | null = null;
  private finishedResolve!: () => void;
  /** Resolves when the utterance was fully heard or was interrupted. */
  readonly finished = new Promise<void>((resolve) => (this.finishedResolve = resolve));
  readonly startedAt = new Date();

  constructor(
    /** Unique per call; names this utterance's marks. */
    readonly seq: number,
    readonly kind: UtteranceKind,
    /** Whether caller speech may cut it (goodbyes are not). */
    readonly interruptible: boolean,
    callSignal: AbortSignal,
  ) {
    if (callSignal.aborted) this.controller.abort(callSignal.reason);
    else callSignal.addEventListener('abort', () => this.controller.abort(callSignal.reason), { once: true });
  }

  /** Aborted on barge-in or when the call ends: stops this utterance's LLM and TTS streams. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Whether any audio has been queued. */
  get hasAudio(): boolean {
    return this.firstAudioAt !== null;
  }

  /** Every chunk fully generated and heard. */
  get allHeard(): boolean {
    return this.generationDone && this.heard >= this.chunks.length;
  }

  /** Every chunk queued so far has been heard (more may still come). */
  get caughtUp(): boolean {
    return this.heard >= this.chunks.length;
  }

  /** All text queued for speech. */
  get spokenText(): string {
    return this.chunks.map((c) => c.text).join(' ');
  }

  /**
   * Starts a chunk whose audio begins at `startMs` on the caller's timeline; `charEndsMs` (the TTS's
   * character timings, still filling as audio arrives) places the cut when the caller barges in.
   */
  startChunk(text: string, round: number | null, startMs: number, charEndsMs?: number[]): Chunk {
    const chunk: Chunk = { text, round, startMs, audioMs: 0, complete: false, charEndsMs };
    this.chunks.push(chunk);
    return chunk;
  }

  /** The chunk's audio is all queued; returns the mark name to send after it. */
  completeChunk(chunk: Chunk): string {
    chunk.complete = true;
    return `${this.seq}.${this.chunks.indexOf(chunk)}`;
  }

  /** A mark came back; returns true when it belonged to this utterance. */
  onMark(name: string): boolean {
    const m = /^(\d+)\.(\d+)$/.exec(name);
    if (!m || Number(m[1]) !== this.seq || this.interrupted) return false;
    this.heard = Math.max(this.heard, Number(m[2]) + 1);
    return true;
  }

  /**
   * What the caller heard once `playedMs` of the timeline has played, per chunk: whole chunks whose mark
   * came back or whose audio has played, then the part of the playing chunk its played time carried.
   */
  heardParts(playedMs: number): Array<{ round: number | null; text: string }> {
    const rate = this.msPerChar();
    const out: Array<{ round: number | null; text: string }> = [];
    for (const [i, chunk] of this.chunks.entries()) {
      const text = i < this.heard ? chunk.text : heardPart(chunk, playedMs, rate);
      if (!text) break;
      out.push({ round: chunk.round, text });
      if (text !== chunk.text) break;
    }
    return out;
  }

  /** The text the caller heard once `playedMs` of the timeline has played. */
  heardText(playedMs: number): string {
    return this.heardParts(playedMs)
      .map((p) => p.text)
      .join(' ');
  }

  /**
   * Stops the utterance: aborts its streams and cuts its history entries to what was heard by `playedMs`.
   * Returns the heard text.
   */
  interrupt(history: ChatHistory, playedMs: number): string {
    this.interrupted = true;
    this.controller.abort(new Error('interrupted'));
    const heard = this.heardParts(playedMs);
    for (const [round, entry] of this.historyEntries) {
      entry.content = heard
        .filter((c) => c.round === round)
        .map((c) => c.text)
        .join(' ');
      if (!entry.content && !entry.toolCalls?.length) history.remove(entry);
    }
    this.finishedResolve();
    return heard.map((p) => p.text).join(' ');
  }

  /** Marks the utterance as completely heard. */
  finish(): void {
    this.finishedResolve();
  }

  /** Aborts without touching history (the call ended). */
  abort(reason: unknown): void {
    this.controller.abort(reason);
    this.finishedResolve();
  }

  // The voice's pace so far in this utterance, for a chunk whose audio is still arriving.
  private msPerChar(): number | undefined {
    let ms = 0;
    let chars = 0;
    for (const c of this.chunks) {
      if (!c.complete) continue;
      ms += c.audioMs;
      chars += c.text.length;
    }
    return chars > 0 ? ms / chars : undefined;
  }
}
