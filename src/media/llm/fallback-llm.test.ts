import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startFakeOpenAi, type FakeOpenAi, type FakeRespond } from '../../../test/fakes/openai.js';
import { ProviderError } from '../../shared/errors.js';
import type { LlmDelta } from '../providers.js';
import { FallbackLlm, type FallbackLlmOptions, type LlmCandidate } from './fallback-llm.js';
import { OpenAiLlm } from './openai-llm.js';
import { loadTokenCounter, type TokenCounter } from './token-count.js';

const request = { messages: [{ role: 'user' as const, content: 'Hi there' }] };

let primary: FakeOpenAi;
let secondary: FakeOpenAi;
let candidates: LlmCandidate[];

beforeEach(async () => {
  primary = await startFakeOpenAi({ respond: () => ({ text: 'Primary speaking.' }) });
  secondary = await startFakeOpenAi({ respond: () => ({ text: 'Secondary speaking.' }) });
  candidates = [
    { provider: new OpenAiLlm({ baseUrl: primary.baseUrl, name: 'primary' }), model: 'big-model' },
    { provider: new OpenAiLlm({ baseUrl: secondary.baseUrl, name: 'secondary' }), model: 'backup-model' },
  ];
});

afterEach(async () => {
  await Promise.all([primary.close(), secondary.close()]);
});

function fallback(options?: FallbackLlmOptions): FallbackLlm {
  return new FallbackLlm(candidates, options);
}

/** Reads a stream to its end; returns what arrived and the error it ended with, if any. */
async function drain(stream: AsyncIterable<LlmDelta>): Promise<{ deltas: LlmDelta[]; error?: unknown }> {
  const deltas: LlmDelta[] = [];
  try {
    for await (const delta of stream) deltas.push(delta);
    return { deltas };
  } catch (error) {
    return { deltas, error };
  }
}

function textOf(deltas: LlmDelta[]): string {
  return deltas.map((d) => (d.kind === 'text' ? d.text : '')).join('');
}

function failWith(status: number): FakeRespond {
  return () => ({ error: { status } });
}

describe('FallbackLlm', () => {
  it('answers from the first candidate when it works', async () => {
    const { deltas, error } = await drain(fallback().chat(request, new AbortController().signal));
    expect(error).toBeUndefined();
    expect(textOf(deltas)).toBe('Primary speaking.');
    expect(secondary.requests).toHaveLength(0);
  });

  it('falls back to the next candidate on a 503 and tells onFallback', async () => {
    primary.setRespond(failWith(503));
    const onFallback = vi.fn();
    const { deltas, error } = await drain(fallback({ onFallback }).chat(request, new AbortController().signal));
    expect(error).toBeUndefined();
    expect(textOf(deltas)).toBe('Secondary speaking.');
    expect(deltas).toContainEqual(expect.objectContaining({ kind: 'usage', model: 'backup-model' }));
    expect(onFallback).toHaveBeenCalledTimes(1);
    expect(onFallback).toHaveBeenCalledWith(candidates[0], candidates[1], expect.any(ProviderError));
    expect(onFallback.mock.calls[0]![2]).toMatchObject({ provider: 'primary', status: 503, retryable: true });
  });

  it('sends each candidate its own model name', async () => {
    primary.setRespond(failWith(429));
    await drain(fallback().chat(request, new AbortController().signal));
    expect(primary.requests[0]!.model).toBe('big-model');
    expect(secondary.requests[0]!.model).toBe('backup-model');
  });

  it('does not fall back on a non-retryable 400', async () => {
    primary.setRespond(failWith(400));
    const { error } = await drain(fallback().chat(request, new AbortController().signal));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ provider: 'primary', status: 400, retryable: false });
    expect(secondary.requests).toHaveLength(0);
  });

  it('does not fall back once text has reached the caller', async () => {
    primary.setRespond(() => ({ text: 'one two three four', tokenDelayMs: 30, dieAfterChunks: 3 }));
    const { deltas, error } = await drain(fallback().chat(request, new AbortController().signal));
    expect(textOf(deltas)).toBe('one two');
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ provider: 'primary', retryable: true });
    expect(secondary.requests).toHaveLength(0);
  });

  it('falls back when the first token takes longer than firstTokenTimeoutMs, cancelling the slow request', async () => {
    primary.setRespond(() => ({ text: 'Too late.', firstTokenDelayMs: 5_000 }));
    const onFallback = vi.fn();
    const started = Date.now();
    const { deltas, error } = await drain(
      fallback({ firstTokenTimeoutMs: 200, onFallback }).chat(request, new AbortController().signal),
    );
    expect(error).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(textOf(deltas)).toBe('Secondary speaking.');
    expect(onFallback.mock.calls[0]![2]).toMatchObject({ retryable: true, message: expect.stringContaining('200 ms') });
    await vi.waitFor(() => expect(primary.abortedStreams).toBe(1));
  });

  it('throws a ProviderError naming every attempt when all candidates fail', async () => {
    primary.setRespond(failWith(503));
    secondary.setRespond(failWith(429));
    const { error } = await drain(fallback().chat(request, new AbortController().signal));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ provider: 'secondary', status: 429, retryable: true });
    const message = (error as ProviderError).message;
    expect(message).toContain('primary/big-model');
    expect(message).toContain('503');
    expect(message).toContain('secondary/backup-model');
    expect(message).toContain('429');
  });

  it('ends quietly when aborted while waiting for the first token, trying no other candidate', async () => {
    primary.setRespond(() => ({ text: 'Too late.', firstTokenDelayMs: 5_000 }));
    const turn = new AbortController();
    setTimeout(() => turn.abort(), 100);
    const { deltas, error } = await drain(fallback().chat(request, turn.signal));
    expect(error).toBeUndefined();
    expect(deltas).toEqual([]);
    expect(secondary.requests).toHaveLength(0);
    await vi.waitFor(() => expect(primary.abortedStreams).toBe(1));
  });

  it('ends quietly when aborted mid-reply', async () => {
    primary.setRespond(() => ({ text: 'one two three four', tokenDelayMs: 100 }));
    const turn = new AbortController();
    const deltas: LlmDelta[] = [];
    for await (const delta of fallback().chat(request, turn.signal)) {
      deltas.push(delta);
      if (delta.kind === 'text') turn.abort();
    }
    expect(deltas).toEqual([{ kind: 'text', text: 'one' }]);
    expect(secondary.requests).toHaveLength(0);
    await vi.waitFor(() => expect(primary.abortedStreams).toBe(1));
  });

  describe('with a token counter', () => {
    let tokens: TokenCounter;
    beforeAll(async () => {
      tokens = await loadTokenCounter();
    });

    it('reports the estimated prompt tokens of a request aborted before its first token', async () => {
      primary.setRespond(() => ({ text: 'Too late.', firstTokenDelayMs: 5_000 }));
      const turn = new AbortController();
      setTimeout(() => turn.abort(), 100);
      const { deltas, error } = await drain(fallback({ tokens }).chat(request, turn.signal));
      expect(error).toBeUndefined();
      expect(deltas).toEqual([{ kind: 'usage', provider: 'primary', model: 'big-model', inputTokens: tokens.prompt(request.messages), outputTokens: 0, estimated: true }]);
      expect(tokens.prompt(request.messages)).toBeGreaterThan(2);
    });

    it('reports the prompt and the streamed output of a reply aborted mid-stream', async () => {
      primary.setRespond(() => ({ text: 'one two three four', tokenDelayMs: 100 }));
      const turn = new AbortController();
      const deltas: LlmDelta[] = [];
      for await (const delta of fallback({ tokens }).chat(request, turn.signal)) {
        deltas.push(delta);
        if (delta.kind === 'text' && delta.text.includes('two')) turn.abort();
      }
      expect(deltas.at(-1)).toEqual({ kind: 'usage', provider: 'primary', model: 'big-model', inputTokens: tokens.prompt(request.messages), outputTokens: tokens.text('one two'), estimated: true });
    });

    it('uses the usage the provider reported, and estimates none for an error answer', async () => {
      primary.setRespond(failWith(503));
      secondary.setRespond(() => ({ text: 'Fine.', promptTokens: 11, completionTokens: 2 }));
      const { deltas } = await drain(fallback({ tokens }).chat(request, new AbortController().signal));
      expect(deltas.filter((d) => d.kind === 'usage')).toEqual([{ kind: 'usage', provider: 'secondary', model: 'backup-model', inputTokens: 11, outputTokens: 2 }]);
    });
  });
});
