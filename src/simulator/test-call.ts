// Starting a test call through the API (`POST /v1/agents/:id/test-calls`), as the simulator's client.

/** A test call could not be started; the message says what to check. */
export class TestCallError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'TestCallError';
  }
}

/** What the API returns for a test call. */
export interface TestCall {
  callId: string;
  streamUrl: string;
  token: string;
  expiresAt: string;
}

/** Where to reach the API and with which key. */
export interface TestCallRequest {
  /** The server's base URL, as this machine reaches it (`http://localhost:3000`). */
  url: string;
  apiKey: string;
  agentId: string;
  timeoutMs?: number;
}

/** Asks the server for a test call to an agent; throws TestCallError with advice for every common failure. */
export async function startTestCall(req: TestCallRequest): Promise<TestCall> {
  const base = req.url.replace(/\/+$/, '');
  const endpoint = `${base}/v1/agents/${encodeURIComponent(req.agentId)}/test-calls`;
  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${req.apiKey}` },
      signal: AbortSignal.timeout(req.timeoutMs ?? 10_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why =
      cause?.code === 'ECONNREFUSED' ? 'connection refused'
      : cause?.code === 'ENOTFOUND' ? 'unknown host'
      : (err as Error).name === 'TimeoutError' ? 'no answer within 10 s'
      : (cause?.message ?? (err as Error).message);
    throw new TestCallError(`cannot reach vocelio at ${base} (${why}): is it running there? Start it with npm start, or point --url at it`);
  }
  const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | Partial<TestCall> | null;
  const message = body && 'error' in body && body.error?.message ? body.error.message : `${res.status} ${res.statusText}`;
  switch (res.status) {
    case 201:
      break;
    case 401:
      throw new TestCallError(`${base} did not accept the API key (401: ${message}); use the vk_... key serve printed on its first start, with --key or VOCELIO_API_KEY`, 401);
    case 403:
      throw new TestCallError(`the API key may not start calls (403: ${message}); it needs the member role or higher and the calls scope`, 403);
    case 404:
      throw new TestCallError(`agent ${req.agentId} was not found at ${base} (404: ${message}); list your agents with GET /v1/agents`, 404);
    case 429:
      throw new TestCallError(`rate limited by ${base} (429: ${message}); try again in a minute`, 429);
    default:
      throw new TestCallError(`POST ${endpoint} failed (${message})`, res.status);
  }
  const call = body as Partial<TestCall> | null;
  if (!call || typeof call.streamUrl !== 'string' || typeof call.token !== 'string' || typeof call.callId !== 'string') {
    throw new TestCallError(`POST ${endpoint} answered 201 without a stream URL and token: is ${base} a vocelio server?`);
  }
  return call as TestCall;
}

/**
 * The stream URL to dial from here. The server builds it from its PUBLIC_URL, which may be a tunnel or a
 * name this machine cannot reach; when its host differs from the URL we reached the API at, the socket
 * is dialled on that URL instead (same server, same `/twilio/media` route).
 */
export function reachableStreamUrl(apiUrl: string, streamUrl: string): { url: string; rewritten: boolean } {
  const api = new URL(apiUrl);
  const stream = new URL(streamUrl);
  if (api.host === stream.host) return { url: streamUrl, rewritten: false };
  const url = `${apiUrl.replace(/\/+$/, '').replace(/^http/, 'ws')}/twilio/media`;
  return { url, rewritten: true };
}
