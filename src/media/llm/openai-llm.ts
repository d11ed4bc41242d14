// OpenAI Chat Completions, or any server that speaks it (Ollama, vLLM, Groq, Together ...), as a streaming
// LlmProvider. The SDK never retries: on a phone call a silent retry costs seconds, so FallbackLlm moves on.
import OpenAI from 'openai';
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import { ProviderError } from '../../shared/errors.js';
import type { ChatMessage, LlmDelta, LlmProvider, LlmRequest, ToolCall, ToolSpec } from '../providers.js';

/** Options for {@link OpenAiLlm}. */
export interface OpenAiLlmOptions {
  /** Omit for servers that need none (Ollama, most vLLM setups). */
  apiKey?: string;
  /** E.g. `http://localhost:11434/v1`; defaults to OpenAI's own API. */
  baseUrl?: string;
  /** Names the provider in errors and usage; defaults to `openai`. */
  name?: string;
  /** Longest wait for the response headers and then between two streamed chunks; default 30 s. */
  timeoutMs?: number;
  /**
   * Field that caps the reply length. Default: `max_completion_tokens` for OpenAI itself (its reasoning models
   * reject `max_tokens`), `max_tokens` elsewhere (most compatible servers only know that one).
   */
  maxTokensField?: 'max_tokens' | 'max_completion_tokens';
}

/** A streaming chat model behind the OpenAI Chat Completions API. */
export class OpenAiLlm implements LlmProvider {
  readonly name: string;
  private readonly client: OpenAI;
  private readonly timeoutMs: number;
  private readonly maxTokensField: 'max_tokens' | 'max_completion_tokens';

  constructor(options: OpenAiLlmOptions = {}) {
    this.name = options.name ?? 'openai';
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxTokensField = options.maxTokensField ?? (isOpenAiItself(options.baseUrl) ? 'max_completion_tokens' : 'max_tokens');
    this.client = new OpenAI({
      // The SDK refuses to start without a key (and would otherwise read OPENAI_API_KEY for a foreign server).
      apiKey: options.apiKey ?? 'not-needed',
      ...(options.baseUrl !== undefined && { baseURL: options.baseUrl }),
      maxRetries: 0,
      timeout: this.timeoutMs,
    });
  }

  /** Streams one completion; ends quietly when `signal` aborts, throws ProviderError on failure. */
  async *chat(request: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmDelta, void, undefined> {
    if (signal.aborted) return;
    // Our own controller, so a stall or an early `break` by the consumer also cancels the HTTP request.
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let stalled = false;
    let stallTimer: NodeJS.Timeout | undefined;
    // The SDK's own timeout stops at the response headers; a stream can also stall after them.
    const armStallTimer = (): void => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => {
        stalled = true;
        controller.abort();
      }, this.timeoutMs);
    };

    try {
      armStallTimer();
      const toolCalls = new Map<number, { id?: string; name: string; arguments: string }>();
      let finishReason: string | undefined;
      let usage: LlmDelta | undefined;
      try {
        const stream = await this.client.chat.completions.create(this.body(request), { signal: controller.signal });
        for await (const chunk of stream) {
          const out: LlmDelta[] = [];
          const choice = chunk.choices.find((c) => c.index === 0);
          if (choice) {
            const content = choice.delta.content;
            if (content) out.push({ kind: 'text', text: content });
            for (const fragment of choice.delta.tool_calls ?? []) collectToolCall(toolCalls, fragment);
            if (choice.finish_reason) {
              finishReason = choice.finish_reason;
              // Some compatible servers finish with 'stop' even when they called tools.
              out.push(...completeToolCalls(toolCalls));
            }
          }
          // Some servers (vLLM's continuous usage stats) report running totals on every chunk: the last one counts.
          if (chunk.usage) {
            usage = {
              kind: 'usage',
              provider: this.name,
              model: chunk.model || request.model,
              inputTokens: chunk.usage.prompt_tokens,
              outputTokens: chunk.usage.completion_tokens,
            };
          }
          // The stall clock stops while the consumer holds us at a yield: a slow consumer is not a slow server.
          clearTimeout(stallTimer);
          yield* out;
          armStallTimer();
        }
      } catch (error) {
        if (signal.aborted && !stalled) return;
        throw this.toProviderError(error, stalled);
      }
      // The SDK ends a cancelled stream without an error, so the reason has to be told apart here.
      if (signal.aborted) return;
      if (stalled) throw this.stallError();
      if (finishReason === undefined) {
        throw new ProviderError(this.name, 'the stream ended before the model finished', true);
      }
      yield* completeToolCalls(toolCalls);
      if (usage) yield usage;
      yield { kind: 'done', finishReason };
    } finally {
      clearTimeout(stallTimer);
      signal.removeEventListener('abort', onAbort);
      controller.abort();
    }
  }

  private body(request: LlmRequest): ChatCompletionCreateParamsStreaming {
    return {
      model: request.model,
      messages: request.messages.map(toOpenAiMessage),
      ...(request.tools?.length && { tools: request.tools.map(toOpenAiTool) }),
      ...(request.temperature !== undefined && { temperature: request.temperature }),
      ...(request.maxTokens !== undefined && { [this.maxTokensField]: request.maxTokens }),
      stream: true,
      stream_options: { include_usage: true },
    };
  }

  private stallError(): ProviderError {
    return new ProviderError(this.name, `no data from the model for ${this.timeoutMs} ms`, true);
  }

  private toProviderError(error: unknown, stalled: boolean): ProviderError {
    if (error instanceof ProviderError) return error;
    if (stalled || error instanceof OpenAI.APIConnectionTimeoutError) {
      return new ProviderError(this.name, `timed out after ${this.timeoutMs} ms`, true, undefined, { cause: error });
    }
    if (error instanceof OpenAI.APIError && typeof error.status === 'number') {
      return new ProviderError(this.name, error.message, ProviderError.isRetryableStatus(error.status), error.status, {
        cause: error,
      });
    }
    // Connection failures, errors sent inside the stream, a connection cut mid-stream: another try may work.
    const message = error instanceof Error ? error.message : String(error);
    return new ProviderError(this.name, `request failed: ${message}`, true, undefined, { cause: error });
  }
}

function isOpenAiItself(baseUrl: string | undefined): boolean {
  if (baseUrl === undefined) return true;
  try {
    return new URL(baseUrl).hostname === 'api.openai.com';
  } catch {
    return false;
  }
}

function toOpenAiMessage(message: ChatMessage): ChatCompletionMessageParam {
  switch (message.role) {
    case 'system':
    case 'user':
      return { role: message.role, content: message.content };
    case 'assistant':
      if (!message.toolCalls?.length) return { role: 'assistant', content: message.content };
      return {
        role: 'assistant',
        // OpenAI wants null, not '', beside tool calls.
        content: message.content || null,
        tool_calls: message.toolCalls.map((call) => ({
          id: call.id,
          type: 'function' as const,
          function: { name: call.name, arguments: call.arguments },
        })),
      };
    case 'tool':
      return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
    default: {
      const unexpected: never = message;
      throw new Error(`unknown chat message role: ${JSON.stringify(unexpected)}`);
    }
  }
}

function toOpenAiTool(tool: ToolSpec): ChatCompletionTool {
  return { type: 'function', function: { name: tool.name, description: tool.description, parameters: tool.parameters } };
}

type ToolCallFragment = NonNullable<ChatCompletionChunk.Choice.Delta['tool_calls']>[number];

function collectToolCall(
  calls: Map<number, { id?: string; name: string; arguments: string }>,
  fragment: ToolCallFragment,
): void {
  const call = calls.get(fragment.index) ?? { name: '', arguments: '' };
  if (fragment.id) call.id = fragment.id;
  // The name comes whole in the first fragment; some compatible servers repeat it in later ones.
  if (fragment.function?.name && !call.name) call.name = fragment.function.name;
  if (fragment.function?.arguments) call.arguments += fragment.function.arguments;
  calls.set(fragment.index, call);
}

function* completeToolCalls(
  calls: Map<number, { id?: string; name: string; arguments: string }>,
): Generator<LlmDelta, void, undefined> {
  for (const [index, call] of [...calls].sort(([a], [b]) => a - b)) {
    // Some compatible servers omit the id; the tool message that answers the call still needs one.
    const complete: ToolCall = { id: call.id ?? `call_${index}`, name: call.name, arguments: call.arguments };
    yield { kind: 'tool_call', call: complete };
  }
  calls.clear();
}
