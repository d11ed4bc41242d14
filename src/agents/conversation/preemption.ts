// Preemptive generation: the LLM starts on the caller's words as soon as they pause, while the engine is
// still deciding whether the pause ends the turn. Only text is generated early: nothing reaches TTS or the
// caller until the turn is confirmed, so a caller who goes on talking never hears the agent. When they do
// go on, or the confirmed words differ from what was sent, the request is aborted and another one starts.
import type { ChatMessage, LlmDelta } from '../../media/providers.js';
import { AsyncQueue } from '../../shared/async-queue.js';
import type { ChatModel } from './conversation-deps.js';

/** What a preemptive request needs besides its messages. */
export interface PreemptionDeps {
  llm: ChatModel;
  /** Request settings (tools, temperature, max tokens), the same as the answer's own first request. */
  request: Omit<Parameters<ChatModel['chat']>[0], 'messages'>;
  /** Meters what the stream used; called even for a discarded request (an aborted stream still reports input tokens). */
  meter(delta: Extract<LlmDelta, { kind: 'usage' }>): void;
}

/**
 * One LLM request started before the caller's turn was confirmed. Its deltas are kept until the answer
 * takes them, or dropped when it is discarded; usage is metered here either way, so the answer never
 * sees (or counts twice) a usage delta of a taken request.
 */
export class PreemptiveRequest {
  private readonly controller = new AbortController();
  private readonly deltas = new AsyncQueue<LlmDelta>();
  private taken = false;
  /** Resolves when the stream has ended (its usage is metered by then). */
  readonly done: Promise<void>;

  constructor(
    /** The caller's words it answers. */
    readonly text: string,
    /** The messages it sent: the answer may only take it when its own request would be the same. */
    readonly messages: ChatMessage[],
    deps: PreemptionDeps,
  ) {
    this.done = this.pump(deps);
  }

  /** Whether an answer to `messages` may use this request. */
  matches(messages: ChatMessage[]): boolean {
    return !this.controller.signal.aborted && !this.taken && JSON.stringify(messages) === JSON.stringify(this.messages);
  }

  /**
   * Hands the stream to the answer: the deltas so far, then the rest as they come. Aborting `signal` (a
   * barge-in, the call ending) aborts the request.
   */
  take(signal: AbortSignal): AsyncIterable<LlmDelta> {
    this.taken = true;
    if (signal.aborted) this.abort();
    else signal.addEventListener('abort', () => this.abort(), { once: true });
    return this.deltas;
  }

  /** Aborts the request and drops what it generated (the stream is still read to its end for usage). */
  discard(): void {
    this.deltas.abort();
    this.abort();
  }

  private abort(): void {
    this.controller.abort(new Error('preemptive request discarded'));
  }

  private async pump(deps: PreemptionDeps): Promise<void> {
    try {
      for await (const delta of deps.llm.chat({ ...deps.request, messages: this.messages }, this.controller.signal)) {
        if (delta.kind === 'usage') deps.meter(delta);
        else this.deltas.push(delta);
      }
      this.deltas.end();
    } catch (err) {
      // A discarded request's error means nothing; a taken one's is the answer's failure.
      this.deltas.fail(err);
    }
  }
}

/** What the conversation's preemptions report. */
export interface PreemptionsDeps extends PreemptionDeps {
  /** A request was answered from, or thrown away. */
  outcome(outcome: 'used' | 'discarded'): void;
  /** A discarded request's stream has ended: its usage can be written. */
  settled(): void;
}

/**
 * The conversation's preemptive request (at most one) and the count of those thrown away since the last
 * caller turn.
 */
export class Preemptions {
  private current: PreemptiveRequest | null = null;
  private discarded = 0;

  constructor(private readonly deps: PreemptionsDeps) {}

  /** Starts a request for `text` (sending `messages`), unless one for the same words runs already. */
  start(text: string, messages: ChatMessage[]): void {
    if (this.current?.text === text) return;
    this.discard();
    this.current = new PreemptiveRequest(text, messages, this.deps);
  }

  /** The caller went on (or their words changed): the running request is wasted. */
  discard(): void {
    const p = this.current;
    if (!p) return;
    this.current = null;
    p.discard();
    this.discarded++;
    this.deps.outcome('discarded');
    // Its input tokens are metered when the aborted stream ends.
    void p.done.then(() => this.deps.settled());
  }

  /** The request an answer to `messages` can use, if one was started on exactly these words; else discards it. */
  take(messages: ChatMessage[]): PreemptiveRequest | null {
    const p = this.current;
    if (!p) return null;
    if (!p.matches(messages)) {
      this.discard();
      return null;
    }
    this.current = null;
    this.deps.outcome('used');
    return p;
  }

  /** What a caller turn's record says: whether its answer used a request, and how many were thrown away. */
  count(used: PreemptiveRequest | null): { used: number; discarded: number } {
    const count = { used: used ? 1 : 0, discarded: this.discarded };
    this.discarded = 0;
    return count;
  }
}
