import { afterEach, describe, expect, it, vi } from 'vitest';
import { startFakeOpenAi, type FakeOpenAi, type FakeOpenAiOptions } from '../../../test/fakes/openai.js';
import { ProviderError } from '../../shared/errors.js';
import type { ChatMessage, LlmDelta, LlmRequest } from '../providers.js';
import { OpenAiLlm, type OpenAiLlmOptions } from './openai-llm.js';

const API_KEY = 'sk-test-0123456789';
const request: LlmRequest = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi there' }] };

let fake: FakeOpenAi | undefined;

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function setup(
  fakeOptions: FakeOpenAiOptions = {},
  llmOptions: OpenAiLlmOptions = {},
): Promise<{ fake: FakeOpenAi; llm: OpenAiLlm }> {
  fake = await startFakeOpenAi({ apiKey: API_KEY, ...fakeOptions });
  const llm = new OpenAiLlm({ apiKey: API_KEY, baseUrl: fake.baseUrl, ...llmOptions });
  return { fake, llm };
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

describe('OpenAiLlm', () => {
  it('yields text deltas while the server is still writing the reply', async () => {
    const { fake, llm } = await setup({
      respond: () => ({ text: 'one two three four five six', tokenDelayMs: 50 }),
    });
    const deltas: LlmDelta[] = [];
    let stillWritingAtFirstText: boolean | undefined;
    for await (const delta of llm.chat(request, new AbortController().signal)) {
      if (delta.kind === 'text' && stillWritingAtFirstText === undefined) {
        stillWritingAtFirstText = fake.openStreams === 1 && fake.completedStreams === 0;
      }
      deltas.push(delta);
    }
    expect(stillWritingAtFirstText).toBe(true);
    expect(deltas.filter((d) => d.kind === 'text').map((d) => (d.kind === 'text' ? d.text : ''))).toEqual([
      'one',
      ' two',
      ' three',
      ' four',
      ' five',
      ' six',
    ]);
    expect(deltas.at(-1)).toEqual({ kind: 'done', finishReason: 'stop' });
  });

  it('assembles tool calls from streamed fragments into complete calls', async () => {
    const { llm } = await setup({
      respond: () => ({
        text: 'Let me check.',
        toolCalls: [
          { name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } },
          { name: 'end_call', arguments: {} },
        ],
      }),
    });
    const { deltas, error } = await drain(llm.chat(request, new AbortController().signal));
    expect(error).toBeUndefined();
    const calls = deltas.flatMap((d) => (d.kind === 'tool_call' ? [d.call] : []));
    expect(calls).toEqual([
      { id: expect.stringMatching(/^call_/), name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' },
      { id: expect.stringMatching(/^call_/), name: 'end_call', arguments: '{}' },
    ]);
    expect(calls[0]!.id).not.toBe(calls[1]!.id);
    expect(textOf(deltas)).toBe('Let me check.');
    expect(deltas.at(-1)).toEqual({ kind: 'done', finishReason: 'tool_calls' });
  });

  it('reports token usage with the model that answered, before done', async () => {
    const { llm } = await setup({ respond: () => ({ text: 'Hello.', promptTokens: 42, completionTokens: 7 }) });
    const { deltas } = await drain(llm.chat(request, new AbortController().signal));
    expect(deltas.slice(-2)).toEqual([
      { kind: 'usage', provider: 'openai', model: 'gpt-4o-mini', inputTokens: 42, outputTokens: 7 },
      { kind: 'done', finishReason: 'stop' },
    ]);
  });

  it("sends messages, tools and settings in OpenAI's shape with the bearer key", async () => {
    const { fake, llm } = await setup();
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are a receptionist.' },
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
      { role: 'tool', toolCallId: 'call_1', content: '{"temp":21}' },
      { role: 'assistant', content: 'It is 21 degrees.' },
    ];
    const parameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    await drain(
      llm.chat(
        {
          model: 'gpt-4o-mini',
          messages,
          tools: [{ name: 'get_weather', description: 'Current weather', parameters }],
          temperature: 0.3,
          maxTokens: 200,
        },
        new AbortController().signal,
      ),
    );
    const sent = fake.requests[0]!;
    expect(sent.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(sent.body).toMatchObject({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.3,
      max_tokens: 200,
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Current weather', parameters } }],
      messages: [
        { role: 'system', content: 'You are a receptionist.' },
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
        { role: 'assistant', content: 'It is 21 degrees.' },
      ],
    });
  });

  it('caps the reply with max_completion_tokens when configured for newer OpenAI models', async () => {
    const { fake, llm } = await setup({}, { maxTokensField: 'max_completion_tokens' });
    await drain(llm.chat({ ...request, maxTokens: 50 }, new AbortController().signal));
    expect(fake.requests[0]!.body).toMatchObject({ max_completion_tokens: 50 });
    expect(fake.requests[0]!.body).not.toHaveProperty('max_tokens');
  });

  it('works against any OpenAI-compatible server at a base URL, without an API key', async () => {
    fake = await startFakeOpenAi({ respond: () => ({ text: 'Local model here.' }) });
    const llm = new OpenAiLlm({ baseUrl: fake.baseUrl, name: 'ollama' });
    const { deltas, error } = await drain(llm.chat({ ...request, model: 'llama3.2' }, new AbortController().signal));
    expect(error).toBeUndefined();
    expect(llm.name).toBe('ollama');
    expect(textOf(deltas)).toBe('Local model here.');
    expect(deltas).toContainEqual(expect.objectContaining({ kind: 'usage', model: 'llama3.2' }));
  });

  it.each([429, 500, 503])('reports HTTP %i as a retryable ProviderError with the status', async (status) => {
    const { llm } = await setup({ respond: () => ({ error: { status } }) });
    const { error } = await drain(llm.chat(request, new AbortController().signal));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ provider: 'openai', retryable: true, status });
  });

  it('reports a 400 as a non-retryable ProviderError', async () => {
    const { llm } = await setup({ respond: () => ({ error: { status: 400, message: "Invalid 'messages'." } }) });
    const { error } = await drain(llm.chat(request, new AbortController().signal));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ retryable: false, status: 400, message: expect.stringContaining("Invalid 'messages'.") });
  });

  it('reports a wrong API key (401) as a non-retryable ProviderError', async () => {
    const { llm } = await setup({}, { apiKey: 'sk-wrong' });
    const { error } = await drain(llm.chat(request, new AbortController().signal));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ retryable: false, status: 401, message: expect.stringContaining('Incorrect API key') });
  });

  it('reports a connection cut mid-stream as a retryable ProviderError after the text so far', async () => {
    const { llm } = await setup({ respond: () => ({ text: 'one two three four five', tokenDelayMs: 30, dieAfterChunks: 3 }) });
    const { deltas, error } = await drain(llm.chat(request, new AbortController().signal));
    expect(textOf(deltas)).toBe('one two');
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ retryable: true });
  });

  it('reports a stream that ends without a finish reason as a retryable ProviderError', async () => {
    const { llm } = await setup({ respond: () => ({ text: 'one two three', endAfterChunks: 2 }) });
    const { deltas, error } = await drain(llm.chat(request, new AbortController().signal));
    expect(textOf(deltas)).toBe('one');
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ retryable: true });
  });

  it('reports an unreachable server as a retryable ProviderError', async () => {
    const closed = await startFakeOpenAi();
    await closed.close();
    const llm = new OpenAiLlm({ baseUrl: closed.baseUrl });
    const { error } = await drain(llm.chat(request, new AbortController().signal));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ retryable: true, status: undefined });
  });

  it('reports a stream that stalls longer than timeoutMs as a retryable ProviderError', async () => {
    const { fake, llm } = await setup({ respond: () => ({ text: 'late', firstTokenDelayMs: 5_000 }) }, { timeoutMs: 200 });
    const started = Date.now();
    const { error } = await drain(llm.chat(request, new AbortController().signal));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ retryable: true, message: expect.stringContaining('200 ms') });
    await vi.waitFor(() => expect(fake.abortedStreams).toBe(1));
  });

  it('does not count time spent by a slow consumer as a stalled stream', async () => {
    const { llm } = await setup({ respond: () => ({ text: 'one two' }) }, { timeoutMs: 200 });
    const deltas: LlmDelta[] = [];
    for await (const delta of llm.chat(request, new AbortController().signal)) {
      deltas.push(delta);
      if (delta.kind === 'text') await new Promise((resolve) => setTimeout(resolve, 400));
    }
    expect(textOf(deltas)).toBe('one two');
    expect(deltas.at(-1)).toEqual({ kind: 'done', finishReason: 'stop' });
  });

  it('ends quietly on abort and closes the HTTP stream', async () => {
    const { fake, llm } = await setup({ respond: () => ({ text: 'one two three four five six', tokenDelayMs: 100 }) });
    const turn = new AbortController();
    const deltas: LlmDelta[] = [];
    for await (const delta of llm.chat(request, turn.signal)) {
      deltas.push(delta);
      if (delta.kind === 'text') turn.abort();
    }
    expect(deltas).toEqual([{ kind: 'text', text: 'one' }]);
    await vi.waitFor(() => expect(fake.abortedStreams).toBe(1));
    expect(fake.openStreams).toBe(0);
  });

  it('ends quietly when aborted before the response arrives', async () => {
    const { fake, llm } = await setup({ respond: () => ({ text: 'slow', firstTokenDelayMs: 5_000 }) });
    const turn = new AbortController();
    setTimeout(() => turn.abort(), 100);
    const { deltas, error } = await drain(llm.chat(request, turn.signal));
    expect(error).toBeUndefined();
    expect(deltas).toEqual([]);
    await vi.waitFor(() => expect(fake.abortedStreams).toBe(1));
  });

  it('cancels the HTTP request when the consumer stops iterating early', async () => {
    const { fake, llm } = await setup({ respond: () => ({ text: 'one two three four', tokenDelayMs: 100 }) });
    for await (const delta of llm.chat(request, new AbortController().signal)) {
      if (delta.kind === 'text') break;
    }
    await vi.waitFor(() => expect(fake.abortedStreams).toBe(1));
  });
});
