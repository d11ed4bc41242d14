// An ordered list of chat models tried one after another. A candidate is abandoned only while the caller has
// heard nothing from it: once text or a tool call is out, switching models would say things twice.
import { ProviderError } from '../../shared/errors.js';
import type { LlmDelta, LlmProvider, LlmRequest } from '../providers.js';

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
   * ProviderError naming every attempt when all candidates fail.
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
            if (winner === 'aborted') {
              pending.catch(() => {});
              return;
            }
            if (winner === 'timeout') {
              pending.catch(() => {});
              throw new FallbackSignal(
                new ProviderError(candidate.provider.name, `no output within ${this.firstTokenTimeoutMs} ms`, true),
              );
            }
            result = winner;
          }
        } catch (error) {
          if (error instanceof FallbackSignal) throw error;
          if (signal.aborted) return;
          if (!started && error instanceof ProviderError && error.retryable) throw new FallbackSignal(error);
          throw error;
        }
        if (result.done) {
          finished = true;
          return;
        }
        const delta = result.value;
        if (delta.kind === 'text' || delta.kind === 'tool_call') {
          started = true;
          clearTimeout(timer);
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
