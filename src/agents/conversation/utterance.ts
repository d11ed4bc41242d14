import type { ChatMessage } from '../../media/providers.js';
import type { TurnLatency } from '../../calls/calls.table.js';

/** What an agent utterance is: an answer, or one of the lines the engine says by itself. */
export type UtteranceKind = 'speech' | 'dtmf' | 'first_message' | 'reprompt' | 'goodbye';

/** One spoken chunk, in the order its mark was sent. `round` is the LLM round it came from (null: a filler). */
interface Chunk {
  text: string;
  round: number | null;
}

/**
 * One thing the agent says (possibly across several LLM rounds with tool calls in between). It owns the
 * turn's AbortSignal and keeps, per chunk, whether Twilio's mark proved the caller heard it.
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
  readonly historyEntries = new Map<number, Extract<ChatMessage, { role: 'assistant' }>>();
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

  /** All text queued for speech. */
  get spokenText(): string {
    return this.chunks.map((c) => c.text).join(' ');
  }

  /** Only the text the marks prove the caller heard. */
  get heardText(): string {
    return this.chunks
      .slice(0, this.heard)
      .map((c) => c.text)
      .join(' ');
  }

  /** Registers a chunk; returns the mark name to send after its audio. */
  addChunk(text: string, round: number | null): string {
    this.chunks.push({ text, round });
    return `${this.seq}.${this.chunks.length - 1}`;
  }

  /** A mark came back; returns true when it belonged to this utterance. */
  onMark(name: string): boolean {
    const m = /^(\d+)\.(\d+)$/.exec(name);
    if (!m || Number(m[1]) !== this.seq || this.interrupted) return false;
    this.heard = Math.max(this.heard, Number(m[2]) + 1);
    return true;
  }

  /** Stops the utterance: aborts its streams and cuts its history entries to what was heard. */
  interrupt(history: ChatMessage[]): void {
    this.interrupted = true;
    this.controller.abort(new Error('interrupted'));
    const heard = this.chunks.slice(0, this.heard);
    for (const [round, entry] of this.historyEntries) {
      entry.content = heard
        .filter((c) => c.round === round)
        .map((c) => c.text)
        .join(' ');
      if (!entry.content && !entry.toolCalls?.length) {
        const i = history.indexOf(entry);
        if (i !== -1) history.splice(i, 1);
      }
    }
    this.finishedResolve();
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
}
