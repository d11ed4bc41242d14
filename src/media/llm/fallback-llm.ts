// An ordered list of chat models tried one after another. A candidate is abandoned only while the caller has
// heard nothing from it: once text or a tool call is out, switching models would say things twice.
import { ProviderError } from '../../shared/errors.js';
import type { LlmDelta, LlmProvider, LlmRequest } from '../providers.js';
import type { TokenCounter } from './token-count.js';

/** One model on one provider, in fallback order. */
export interface LlmCandidate {
  provider: LlmProvider;
  model: string;
}

/** Options for {@link FallbackLlm}. */
export interface FallbackLlmOptions {
  /** How long a candidate may take to produce its first text or tool call; default 8 s. */
  firstTokenTimeoutMs?: number;
  /** Told each time a candidate is abandoned for the next one (logs, metrics). */
  onFallback?: (from: LlmCandidate, to: LlmCandidate, error: ProviderError) => void;
  /**
   * Counts the tokens of attempts the provider reported no usage for (cut by us, or by a server that sends
   * none), so they yield an `estimated` usage delta instead of nothing. Without it such attempts count nothing.
   */
  tokens?: TokenCounter;
}

/** Streams a completion from the first candidate that answers, falling back on retryable failures. */
export class FallbackLlm {
  private readonly firstTokenTimeoutMs: number;

  constructor(
    readonly candidates: readonly LlmCandidate[],
    private readonly options: FallbackLlmOptions = {},
  ) {
    if (candidates.length === 0) throw new Error('FallbackLlm needs at least one candidate');
    this.firstTokenTimeoutMs = options.firstTokenTimeoutMs ?? 8_000;
  }

  /**
   * Streams one completion; the `usage` delta names the model that answered. Ends quietly when `signal` aborts;
   * throws the candidate's ProviderError once output has started or when it is not retryable, and a
   * ProviderError naming every attempt when all candidates fail. An attempt the provider billed without
   * saying so (aborted, timed out, failed mid-stream) still yields a usage delta, marked `estimated`, before
   * it ends: keep iterating after an abort to receive it.
   */
  async *chat(request: Omit<LlmRequest, 'model'>, signal: AbortSignal): AsyncGenerator<LlmDelta, void, undefined> {
    const failures: string[] = [];
    let lastError: ProviderError | undefined;
    for (const [i, candidate] of this.candidates.entries()) {
      if (signal.aborted) return;
      const next = this.candidates[i + 1];
      try {
        yield* this.attempt(candidate, request, signal);
        return;
      } catch (error) {
        if (!(error instanceof FallbackSignal)) throw error;
        lastError = error.error;
        failures.push(`${candidate.provider.name}/${candidate.model}: ${error.error.message}`);
        if (next) notify(this.options.onFallback, candidate, next, error.error);
      }
    }
    const last = lastError as ProviderError;
    throw new ProviderError(
      last.provider,
      `all ${this.candidates.length} LLM candidates failed: ${failures.join('; ')}`,
      last.retryable,
      last.status,
      { cause: last },
    );
  }

  // Throws FallbackSignal when the next candidate should be tried; anything else goes to the caller as is.
  private async *attempt(
    candidate: LlmCandidate,
    request: Omit<LlmRequest, 'model'>,
    signal: AbortSignal,
  ): AsyncGenerator<LlmDelta, void, undefined> {
    // A candidate of its own, so one that is abandoned stops its HTTP request without touching the next.
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const iterator = candidate.provider.chat({ ...request, model: candidate.model }, controller.signal)[Symbol.asyncIterator]();
    let started = false;
    let finished = false;
    // What the provider streamed, for counting when it reports no usage itself.
    let usageSeen = false;
    let output = '';
    const estimate = (): LlmDelta[] => {
      const tokens = this.options.tokens;
      if (usageSeen || !tokens) return [];
      usageSeen = true;
      const inputTokens = tokens.prompt(request.messages, request.tools);
      return [{ kind: 'usage', provider: candidate.provider.name, model: candidate.model, inputTokens, outputTokens: tokens.text(output), estimated: true }];
    };
    let timer: NodeJS.Timeout | undefined;
    let onAbortBeforeOutput: (() => void) | undefined;
    // Resolves when the first-token deadline passes or the caller aborts, whichever comes first; raced against
    // the provider so that one which ignores its signal cannot hold the call.
    const interrupted = new Promise<'timeout' | 'aborted'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.firstTokenTimeoutMs);
      onAbortBeforeOutput = () => resolve('aborted');
      signal.addEventListener('abort', onAbortBeforeOutput, { once: true });
    });
    try {
      for (;;) {
        let result: IteratorResult<LlmDelta, unknown>;
        try {
          if (started) {
            result = await iterator.next();
          } else {
            const pending = iterator.next();
            const winner = await Promise.race([pending, interrupted]);
            // Either way the request reached the provider, which bills its prompt.
            if (winner === 'aborted') {
              pending.catch(() => {});
              yield* estimate();
              return;
            }
            if (winner === 'timeout') {
              pending.catch(() => {});
              yield* estimate();
              throw new FallbackSignal(
                new ProviderError(candidate.provider.name, `no output within ${this.firstTokenTimeoutMs} ms`, true),
              );
            }
            result = winner;
          }
        } catch (error) {
          if (error instanceof FallbackSignal) throw error;
          if (signal.aborted) {
            yield* estimate();
            return;
          }
          // An error answer before any output is not billed; a stream that broke after output was.
          if (!started && error instanceof ProviderError && error.retryable) throw new FallbackSignal(error);
          if (started) yield* estimate();
          throw error;
        }
        if (result.done) {
          finished = true;
          yield* estimate();
          return;
        }
        const delta = result.value;
        if (delta.kind === 'text' || delta.kind === 'tool_call') {
          started = true;
          clearTimeout(timer);
          output += delta.kind === 'text' ? delta.text : delta.call.name + delta.call.arguments;
        } else if (delta.kind === 'usage') {
          usageSeen = true;
        }
        yield delta;
      }
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (onAbortBeforeOutput) signal.removeEventListener('abort', onAbortBeforeOutput);
      if (!finished) {
        controller.abort();
        // Not awaited: a provider stuck in a request must not hold up the next candidate.
        void iterator.return?.().catch(() => {});
      }
    }
  }
}

// Carries a retryable failure from attempt() to chat(), apart from errors that must reach the caller.
class FallbackSignal extends Error {
  constructor(readonly error: ProviderError) {
    super(error.message);
  }
}

function notify(
  onFallback: FallbackLlmOptions['onFallback'],
  from: LlmCandidate,
  to: LlmCandidate,
  error: ProviderError,
): void {
  try {
    onFallback?.(from, to, error);
  } catch {
    // A failing logger must not end the call.
  }
}
