// What the benchmark's main thread (the server) and the load-generator worker say to each other.

/** The request kinds of the API mix, in the order the result arrays index them. */
export const REQUEST_KINDS = ['list', 'get', 'create'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

/** How each kind reads in reports. */
export const KIND_LABELS: Record<RequestKind, string> = {
  list: 'GET /v1/agents?limit=20',
  get: 'GET /v1/agents/:id',
  create: 'POST /v1/agents',
};

/** Everything the generator needs; passed as `workerData`. */
export interface LoadPlan {
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  /** Owner API key; every request is authenticated like a real client's. */
  apiKey: string;
  /** Existing agents for `GET /v1/agents/:id`. */
  agentIds: string[];
  /** Requests per second, scheduled by the clock whatever the server does. */
  rate: number;
  /** Seconds sent at full rate before measuring starts; their latencies are discarded. */
  warmupS: number;
  /** Seconds measured. */
  durationS: number;
  /** Upper bound on open connections; requests beyond it wait in the agent's queue (and that wait counts). */
  maxSockets: number;
  /** A request still unanswered after this long is abandoned and counted as an error. */
  timeoutMs: number;
}

/** Main thread -> worker. */
export type ControlMessage = { kind: 'stop' };

/** What the generator measured, for the measured window only. */
export interface LoadResult {
  /** Latency of each scheduled request, ms from its scheduled send time; NaN when the connection failed. */
  latenciesMs: Float64Array;
  /** Index into REQUEST_KINDS for each entry of latenciesMs. */
  kinds: Uint8Array;
  /** 1 where the request failed (non-2xx, network error or timeout). */
  failed: Uint8Array;
  /** Requests scheduled (and sent) in the measured window. */
  requests: number;
  /** Non-2xx responses plus requests that failed or timed out. */
  errors: number;
  /** Error counts by status code, or by `network`/`timeout`. */
  errorsBy: Record<string, number>;
  /** ms from the start of the measured window to the last measured response. */
  windowMs: number;
  /** Mean lateness of the generator itself (actual send - scheduled send), ms; part of every latency. */
  meanSendLagMs: number;
  /** Worst lateness of the generator itself (actual send - scheduled send), ms; large values mean the generator, not the server, was behind. */
  maxSendLagMs: number;
  /** True when stopped early (Ctrl-C). */
  interrupted: boolean;
}

/** Worker -> main thread. */
export type WorkerMessage =
  | { kind: 'measure-start' }
  | { kind: 'progress'; phase: 'warm-up' | 'measure' | 'drain'; elapsedS: number; totalS: number; sent: number; inFlight: number; errors: number }
  | { kind: 'done'; result: LoadResult }
  | { kind: 'failed'; message: string };
