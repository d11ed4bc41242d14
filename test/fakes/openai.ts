// A local stand-in for OpenAI's Chat Completions endpoint that speaks the real wire format (bearer auth, SSE
// chunks shaped like `chat.completion.chunk`, the `[DONE]` sentinel, OpenAI's error JSON), so tests run the
// official SDK unmodified. Replies are scripted per request, with timing and failure knobs.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** One request the fake received, as handed to `respond` and kept in `requests`. */
export interface FakeOpenAiRequest {
  /** The parsed JSON body. */
  body: Record<string, unknown>;
  model: string;
  messages: unknown[];
  headers: IncomingHttpHeaders;
}

/** Timing, failure and accounting knobs shared by every kind of reply. */
export interface FakeReplyOptions {
  /** Wait before the first content (or before the error response). */
  firstTokenDelayMs?: number;
  /** Wait between two content chunks (words, tool-call fragments). */
  tokenDelayMs?: number;
  /** Destroy the socket right after this many `data:` chunks (the role chunk counts as the first). */
  dieAfterChunks?: number;
  /** End the response cleanly after this many `data:` chunks, with no finish reason and no `[DONE]`. */
  endAfterChunks?: number;
  /** Reported usage; default is a rough count of characters / 4. */
  promptTokens?: number;
  completionTokens?: number;
  /** Overrides the finish reason (default `stop`, or `tool_calls` when the reply calls tools). */
  finishReason?: 'stop' | 'length' | 'tool_calls' | 'content_filter';
}

/** A tool call the fake model makes; `arguments` is sent as is when a string, else as JSON. */
export interface FakeToolCall {
  name: string;
  arguments: unknown;
}

/** An error response in OpenAI's shape; `type`, `code` and `message` default per status. */
export interface FakeError {
  status: number;
  type?: string;
  code?: string;
  message?: string;
}

/** What the fake model answers to one request. */
export type FakeReply = FakeReplyOptions &
  ({ text: string } | { toolCalls: FakeToolCall[]; text?: string } | { error: FakeError });

/** Scripts the reply to each request. */
export type FakeRespond = (request: FakeOpenAiRequest) => FakeReply | Promise<FakeReply>;

/** Options for {@link startFakeOpenAi}. */
export interface FakeOpenAiOptions {
  /** When set, requests must carry `Authorization: Bearer <apiKey>`; when not, any key (or none) passes, like Ollama. */
  apiKey?: string;
  /** Default: echo a fixed sentence. */
  respond?: FakeRespond;
}

/** A running fake OpenAI server. */
export interface FakeOpenAi {
  /** Base URL for the SDK, `http://127.0.0.1:PORT/v1`. */
  readonly baseUrl: string;
  /** Every chat completion request received, in order. */
  readonly requests: FakeOpenAiRequest[];
  /** Streaming responses still being written. */
  readonly openStreams: number;
  /** Streaming responses the client closed before the fake finished them. */
  readonly abortedStreams: number;
  /** Streaming responses written to the end (`[DONE]`). */
  readonly completedStreams: number;
  /** Replaces the reply script. */
  setRespond(respond: FakeRespond): void;
  /** Closes the server and every connection. */
  close(): Promise<void>;
}

/** The sentence the fake answers with when no `respond` is given. */
export const FAKE_DEFAULT_REPLY = 'Hello! This is the fake model speaking.';

/** Starts a fake OpenAI Chat Completions server on 127.0.0.1 and a free port. */
export async function startFakeOpenAi(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  let respond: FakeRespond = options.respond ?? (() => ({ text: FAKE_DEFAULT_REPLY }));
  const requests: FakeOpenAiRequest[] = [];
  let openStreams = 0;
  let abortedStreams = 0;
  let completedStreams = 0;
  let closing = false;

  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, { status: 500, message: `fake server failure: ${String(error)}` });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      sendError(res, { status: 404, message: `Invalid URL (${req.method ?? 'GET'} ${path})`, code: 'unknown_url' });
      return;
    }
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      const given = /^Bearer (.*)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      sendError(res, {
        status: 401,
        message: `Incorrect API key provided: ${given.slice(0, 3)}****${given.slice(-4)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
        code: 'invalid_api_key',
      });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      sendError(res, { status: 400, message: 'We could not parse the JSON body of your request.' });
      return;
    }
    if (!isRecord(body) || typeof body.model !== 'string' || !Array.isArray(body.messages)) {
      sendError(res, { status: 400, message: "Missing required parameter: 'model' or 'messages'." });
      return;
    }
    const request: FakeOpenAiRequest = { body, model: body.model, messages: body.messages, headers: req.headers };
    requests.push(request);
    const reply = await respond(request);

    if ('error' in reply) {
      if (reply.firstTokenDelayMs) await sleep(reply.firstTokenDelayMs);
      sendError(res, reply.error);
      return;
    }
    const text = reply.text ?? '';
    const toolCalls = 'toolCalls' in reply ? reply.toolCalls.map(toWireToolCall) : [];
    const finishReason = reply.finishReason ?? (toolCalls.length ? 'tool_calls' : 'stop');
    const usage = usageOf(reply, request, text, toolCalls);
    const meta = { id: `chatcmpl-${randomId(29)}`, created: Math.floor(Date.now() / 1000), model: request.model };

    if (body.stream !== true) {
      if (reply.firstTokenDelayMs) await sleep(reply.firstTokenDelayMs);
      sendJson(res, 200, {
        ...meta,
        object: 'chat.completion',
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: toolCalls.length && !text ? null : text,
              refusal: null,
              annotations: [],
              ...(toolCalls.length && { tool_calls: toolCalls }),
            },
            logprobs: null,
            finish_reason: finishReason,
          },
        ],
        usage,
        service_tier: 'default',
        system_fingerprint: 'fp_fake0001',
      });
      return;
    }

    const streamOptions = isRecord(body.stream_options) ? body.stream_options : {};
    const includeUsage = streamOptions.include_usage === true;
    if (req.socket.destroyed) {
      // The client gave up while `respond` was running: 'close' has fired already and will not again.
      abortedStreams += 1;
      return;
    }
    openStreams += 1;
    let killedByUs = false;
    let clientGone = false;
    res.on('close', () => {
      openStreams -= 1;
      if (res.writableFinished) completedStreams += 1;
      else if (!killedByUs) abortedStreams += 1;
      clientGone = true;
    });
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-request-id': `req_${randomId(32)}`,
      'openai-processing-ms': '12',
    });
    res.flushHeaders();

    let written = 0;
    // Returns false once the stream is over (client gone, or killed on purpose), so the script stops.
    const send = (payload: string): boolean => {
      if (clientGone || closing) return false;
      written += 1;
      if (reply.dieAfterChunks !== undefined && written >= reply.dieAfterChunks) {
        killedByUs = true;
        // Destroyed once the bytes are out, so the client sees the chunks and then the cut.
        res.write(`data: ${payload}\n\n`, () => res.socket?.destroy());
        return false;
      }
      res.write(`data: ${payload}\n\n`);
      if (reply.endAfterChunks !== undefined && written >= reply.endAfterChunks) {
        res.end();
        return false;
      }
      return true;
    };
    const chunk = (delta: Record<string, unknown>, finish: string | null = null): boolean =>
      send(
        JSON.stringify({
          ...meta,
          object: 'chat.completion.chunk',
          system_fingerprint: 'fp_fake0001',
          choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
          ...(includeUsage && { usage: null }),
        }),
      );
    const pause = async (ms: number | undefined): Promise<boolean> => {
      if (ms) await sleep(ms);
      return !clientGone && !closing;
    };

    if (!(await pause(reply.firstTokenDelayMs))) return;
    if (!chunk({ role: 'assistant', content: '', refusal: null })) return;
    let first = true;
    for (const word of splitWords(text)) {
      if (!first && !(await pause(reply.tokenDelayMs))) return;
      first = false;
      if (!chunk({ content: word })) return;
    }
    for (const [index, call] of toolCalls.entries()) {
      if (!first && !(await pause(reply.tokenDelayMs))) return;
      first = false;
      const opening = { index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } };
      if (!chunk({ tool_calls: [opening] })) return;
      for (const piece of splitArguments(call.function.arguments)) {
        if (!(await pause(reply.tokenDelayMs))) return;
        if (!chunk({ tool_calls: [{ index, function: { arguments: piece } }] })) return;
      }
    }
    if (!chunk({}, finishReason)) return;
    if (includeUsage) {
      const final = { ...meta, object: 'chat.completion.chunk', system_fingerprint: 'fp_fake0001', choices: [], usage };
      if (!send(JSON.stringify(final))) return;
    }
    if (!send('[DONE]')) return;
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    get openStreams() {
      return openStreams;
    },
    get abortedStreams() {
      return abortedStreams;
    },
    get completedStreams() {
      return completedStreams;
    },
    setRespond(next) {
      respond = next;
    },
    async close() {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

interface WireToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

function toWireToolCall(call: FakeToolCall): WireToolCall {
  const args = typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments);
  return { id: `call_${randomId(24)}`, type: 'function', function: { name: call.name, arguments: args } };
}

// Words keep their leading space, as OpenAI's tokens do, so the chunks concatenate to the exact text.
function splitWords(text: string): string[] {
  return text.split(/(?=\s)/).filter((word) => word.length > 0);
}

// At most four pieces, so even short argument strings arrive in several fragments.
function splitArguments(args: string): string[] {
  const size = Math.max(1, Math.ceil(args.length / 4));
  const pieces: string[] = [];
  for (let i = 0; i < args.length; i += size) pieces.push(args.slice(i, i + size));
  return pieces;
}

function usageOf(reply: FakeReplyOptions, request: FakeOpenAiRequest, text: string, calls: WireToolCall[]) {
  const promptTokens = reply.promptTokens ?? Math.max(1, Math.ceil(JSON.stringify(request.messages).length / 4));
  const outputChars = text.length + calls.reduce((n, c) => n + c.function.name.length + c.function.arguments.length, 0);
  const completionTokens = reply.completionTokens ?? Math.max(1, Math.ceil(outputChars / 4));
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

const ERROR_DEFAULTS: Record<number, { type: string; code: string | null; message: string }> = {
  400: { type: 'invalid_request_error', code: null, message: 'Invalid request.' },
  401: { type: 'invalid_request_error', code: 'invalid_api_key', message: 'Incorrect API key provided.' },
  403: { type: 'invalid_request_error', code: 'unsupported_country_region_territory', message: 'Forbidden.' },
  404: { type: 'invalid_request_error', code: 'model_not_found', message: 'The model does not exist or you do not have access to it.' },
  429: {
    type: 'requests',
    code: 'rate_limit_exceeded',
    message: 'Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.',
  },
  500: { type: 'server_error', code: null, message: 'The server had an error while processing your request. Sorry about that!' },
  503: { type: 'server_error', code: null, message: 'The engine is currently overloaded, please try again later.' },
};

function sendError(res: ServerResponse, error: FakeError): void {
  const defaults = ERROR_DEFAULTS[error.status] ?? { type: 'server_error', code: null, message: `Error ${error.status}.` };
  const headers: Record<string, string> = { 'x-request-id': `req_${randomId(32)}` };
  if (error.status === 429) headers['retry-after'] = '1';
  sendJson(
    res,
    error.status,
    {
      error: {
        message: error.message ?? defaults.message,
        type: error.type ?? defaults.type,
        param: null,
        code: error.code ?? defaults.code,
      },
    },
    headers,
  );
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-request-id': `req_${randomId(32)}`,
    ...headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function randomId(length: number): string {
  return randomBytes(length).toString('base64url').replace(/[-_]/g, 'x').slice(0, length);
}
