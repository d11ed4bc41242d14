import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';

/** Where and how each external provider is reached; base URLs exist so tests and self-hosters can redirect them. */
export interface ProviderConfig {
  twilio: { accountSid?: string; authToken?: string; apiKeySid?: string; apiKeySecret?: string; baseUrl?: string };
  deepgram: { apiKey?: string; baseUrl?: string };
  /** `name` labels the endpoint in usage records and errors (default: `openai`, or the base URL's host). */
  openai: { apiKey?: string; baseUrl?: string; name?: string };
  elevenlabs: { apiKey?: string; baseUrl?: string };
  stripe: { secretKey?: string; webhookSecret?: string; baseUrl?: string };
}

/** The whole, validated configuration of a Vocelio process. */
export interface Config {
  env: 'development' | 'production' | 'test';
  host: string;
  port: number;
  publicUrl: string;
  dataDir: string;
  /** Installed Piper voices (`<name>.onnx` + `<name>.onnx.json`); default `DATA_DIR/voices`. */
  voicesDir: string;
  /** Where `vocelio voices pull` downloads Piper voices from (the rhasspy/piper-voices repository layout). */
  piperVoicesUrl: string;
  /** PostgreSQL connection string; absent means the embedded PGlite database under `dataDir`. */
  databaseUrl?: string;
  /** Redis connection string; absent means the in-process queue and in-memory rate limits. */
  redisUrl?: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Requests per minute per API key (or per client IP when unauthenticated). */
  rateLimitPerMinute: number;
  /** Largest accepted request body, bytes. */
  bodyLimitBytes: number;
  /** Dashboard session lifetime. */
  sessionTtlHours: number;
  /** Create an organization, owner and API key on first start when the database has none. */
  autoBootstrap: boolean;
  bootstrapEmail: string;
  /**
   * Which proxies' X-Forwarded-For/Proto to believe: `false` (none) or trusted proxy addresses, CIDRs and
   * proxy-addr names (`loopback`, `linklocal`, `uniquelocal`). Never "everyone" and never a bare hop count:
   * a client could then choose its own address and escape every per-address limit.
   */
  trustProxy: false | string[];
  /** HTTP server timeouts, chosen in docs/decisions.md ("Timeouts"). */
  http: HttpTimeouts;
  /** Media Streams sockets that have not yet presented an accepted `start`. */
  mediaStream: { startTimeoutMs: number; maxPending: number; maxPendingPerAddress: number };
  /** Durable events and the event stream (`EVENTS_*`, `EVENT_STREAM_*`). */
  events: EventsConfig;
  /** How calls end when a signal is lost or a node dies (`CALL_*`, `NODE_*`). */
  lifecycle: LifecycleConfig;
  /** When set, `/metrics` requires `Authorization: Bearer <token>`. */
  metricsToken?: string;
  /** An S3-compatible bucket for call recordings (`RECORDINGS_S3_*`); unset: files under `DATA_DIR/recordings`. */
  recordingsS3?: S3Settings;
  /** Let agents' HTTP tools reach loopback and private networks (off by default: SSRF protection). */
  toolsAllowPrivateNetwork: boolean;
  /** `SECRETS_KEY`: the 32-byte key that encrypts tool secrets at rest; unset, one is kept in `DATA_DIR`. */
  secretsKey?: Uint8Array;
  providers: ProviderConfig;
}

/** Durable events and `GET /v1/events/stream`. */
export interface EventsConfig {
  /** How often a node looks for new events without a PostgreSQL notification (a fallback). */
  pollMs: number;
  /** Dispatched events older than this are deleted, and can no longer be replayed. */
  retentionDays: number;
  /** A comment line this often keeps idle streams open through proxies. */
  streamHeartbeatMs: number;
  /** Unsent bytes a stream client may leave unread before it is disconnected. */
  streamMaxBufferedBytes: number;
  /** Streams one organization may hold open on one node. */
  streamMaxPerOrganization: number;
}

/** Call finalization and crash recovery; chosen in docs/decisions.md ("Call lifecycle"). */
export interface LifecycleConfig {
  /** After a call's first end signal, how long to wait for the other (a lost carrier callback). */
  finalizeGraceMs: number;
  /** How often each node looks for calls to finalize, crashed nodes' calls and expired placements. */
  sweepMs: number;
  /** An outbound call with no carrier id this long after it was created is `placement_unknown`. */
  placementDeadlineMs: number;
  /** How often a `serve` node renews its lease. */
  nodeHeartbeatMs: number;
  /** A node whose lease is older than this is gone; the calls it held end `server_crashed`. */
  nodeLeaseMs: number;
}

/** An S3-compatible bucket. */
export interface S3Settings {
  /** Base URL of the service, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://minio:9000`; objects are addressed path-style. */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials' session token, if any. */
  sessionToken?: string;
}

/** The HTTP server's timeouts, in ms. */
export interface HttpTimeouts {
  /** The whole request (headers and body) must arrive within this; slow-body clients get 408. */
  requestTimeoutMs: number;
  /** The headers must arrive within this (slowloris); also bounds a connection that sends nothing. */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this; longer than a load balancer's idle timeout. */
  keepAliveTimeoutMs: number;
  /** How often Node checks the request and headers timeouts (a timeout fires up to this late). */
  connectionsCheckingIntervalMs: number;
}

/** A configuration value that cannot work; the message names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function str(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function lifecycleConfig(env: Env): LifecycleConfig {
  const nodeHeartbeatMs = int(env, 'NODE_HEARTBEAT_MS', 5000, 50, 300_000);
  const nodeLeaseMs = int(env, 'NODE_LEASE_MS', 20_000, 100, 3_600_000);
  // A lease shorter than two heartbeats would let one late heartbeat declare a live node dead.
  if (nodeLeaseMs < 2 * nodeHeartbeatMs) throw new ConfigError('NODE_LEASE_MS', `must be at least twice NODE_HEARTBEAT_MS (${nodeHeartbeatMs})`);
  return {
    finalizeGraceMs: int(env, 'CALL_FINALIZE_GRACE_MS', 30_000, 0, 3_600_000),
    // On the embedded database each query blocks the event loop that carries live audio, and a crashed
    // node's calls are found at start (the data-dir lock): sweep less often there.
    sweepMs: int(env, 'CALL_SWEEP_MS', env.DATABASE_URL ? 5000 : 15_000, 50, 600_000),
    placementDeadlineMs: int(env, 'OUTBOUND_PLACEMENT_DEADLINE_MS', 120_000, 1000, 86_400_000),
    nodeHeartbeatMs,
    nodeLeaseMs,
  };
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = str(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

const PROXY_ADDR_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

// TRUST_PROXY: the addresses of the proxies in front of us. `true` would trust every hop, letting any client
// choose its address with X-Forwarded-For. A hop count cannot tell the proxy from a client that connects
// directly (fastify >= 5.12.1 ignores one for that reason, GHSA-3m5p-2c4r-xxw2, so it would silently put every
// client in one rate-limit bucket); both are refused with what to write instead.
const TRUST_PROXY_HINT =
  'list the addresses of the proxies in front of this server, e.g. TRUST_PROXY=loopback behind ngrok or a proxy on ' +
  'the same host, TRUST_PROXY=10.0.0.0/8 behind a load balancer in a private network';

function trustProxy(env: Env): false | string[] {
  const raw = str(env, 'TRUST_PROXY');
  if (raw === undefined || ['false', 'no', 'off', '0'].includes(raw.toLowerCase())) return false;
  if (['true', 'yes', 'on'].includes(raw.toLowerCase())) {
    throw new ConfigError('TRUST_PROXY', `true would let any client choose its address with X-Forwarded-For; ${TRUST_PROXY_HINT}`);
  }
  if (/^\d+$/.test(raw)) {
    throw new ConfigError('TRUST_PROXY', `a hop count (${raw}) cannot tell a proxy from a client that connects directly; ${TRUST_PROXY_HINT}`);
  }
  const entries = raw.split(',').map((e) => e.trim()).filter(Boolean);
  for (const entry of entries) {
    if (!isProxyEntry(entry)) {
      throw new ConfigError('TRUST_PROXY', `"${entry}" is not an IP address, a CIDR range or one of ${PROXY_ADDR_NAMES.join(', ')}`);
    }
  }
  return entries;
}

function isProxyEntry(entry: string): boolean {
  if (PROXY_ADDR_NAMES.includes(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (!family || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

function httpTimeouts(env: Env): HttpTimeouts {
  const requestTimeoutMs = int(env, 'HTTP_REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000);
  const headersTimeoutMs = int(env, 'HTTP_HEADERS_TIMEOUT_MS', 10_000, 100, 3_600_000);
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new ConfigError('HTTP_HEADERS_TIMEOUT_MS', `must not exceed HTTP_REQUEST_TIMEOUT_MS (${requestTimeoutMs}), got ${headersTimeoutMs}`);
  }
  return {
    requestTimeoutMs,
    headersTimeoutMs,
    keepAliveTimeoutMs: int(env, 'HTTP_KEEP_ALIVE_TIMEOUT_MS', 65_000, 100, 3_600_000),
    // A tenth of the shortest timeout, at most 1 s: Node's default (30 s) would let a 10 s timeout fire at 40 s.
    connectionsCheckingIntervalMs: Math.max(50, Math.min(1000, Math.floor(headersTimeoutMs / 10))),
  };
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `is not a valid URL: "${redact(raw)}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${protocols.map((p) => `${p}//`).join(' or ')}, got "${parsed.protocol}//"`);
  }
  return raw;
}

// Connection strings carry passwords; error messages must not.
function redact(raw: string): string {
  return raw.replace(/\/\/([^:/@]+):([^@]+)@/, '//$1:***@');
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

/** A 32-byte key written as 64 hex characters or as base64 (base64url too); null when it is neither. */
export function parseSecretsKey(raw: string): Uint8Array | null {
  const text = raw.trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) return null;
  const key = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return key.byteLength === 32 ? key : null;
}

function secretsKey(env: Env): Uint8Array | undefined {
  const raw = str(env, 'SECRETS_KEY');
  if (raw === undefined) return undefined;
  const key = parseSecretsKey(raw);
  if (!key) throw new ConfigError('SECRETS_KEY', `must be 32 bytes written as base64 (openssl rand -base64 32) or 64 hex characters, got ${raw.length} characters`);
  return key;
}

function pairRequired(env: Env, a: string, b: string): void {
  if (Boolean(str(env, a)) !== Boolean(str(env, b))) {
    const missing = str(env, a) ? b : a;
    throw new ConfigError(missing, `must be set together with ${missing === a ? b : a}`);
  }
}

/** The bucket from `RECORDINGS_S3_*` variables, or undefined when none is set; throws ConfigError naming a bad one. */
export function s3SettingsFromEnv(env: Env): S3Settings | undefined {
  const get = (name: string) => str(env, name);
  const names = ['RECORDINGS_S3_ENDPOINT', 'RECORDINGS_S3_BUCKET', 'RECORDINGS_S3_REGION', 'RECORDINGS_S3_ACCESS_KEY_ID', 'RECORDINGS_S3_SECRET_ACCESS_KEY'];
  if (names.every((n) => get(n) === undefined)) return undefined;
  for (const n of ['RECORDINGS_S3_BUCKET', 'RECORDINGS_S3_ACCESS_KEY_ID', 'RECORDINGS_S3_SECRET_ACCESS_KEY']) {
    if (!get(n)) throw new ConfigError(n, 'must be set when any RECORDINGS_S3_* variable is set');
  }
  const region = get('RECORDINGS_S3_REGION') ?? 'us-east-1';
  const endpoint = get('RECORDINGS_S3_ENDPOINT') ?? `https://s3.${region}.amazonaws.com`;
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new ConfigError('RECORDINGS_S3_ENDPOINT', `is not a valid URL: "${endpoint}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError('RECORDINGS_S3_ENDPOINT', 'must start with http:// or https://');
  if (parsed.username || parsed.password || parsed.search || parsed.hash) throw new ConfigError('RECORDINGS_S3_ENDPOINT', 'must be a plain base URL (no credentials, query or fragment)');
  return {
    endpoint: endpoint.replace(/\/+$/, ''),
    bucket: get('RECORDINGS_S3_BUCKET')!,
    region,
    accessKeyId: get('RECORDINGS_S3_ACCESS_KEY_ID')!,
    secretAccessKey: get('RECORDINGS_S3_SECRET_ACCESS_KEY')!,
    sessionToken: get('RECORDINGS_S3_SESSION_TOKEN'),
  };
}

/** Builds the configuration from environment variables; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = oneOf(env, 'NODE_ENV', ['development', 'production', 'test'], 'development');
  const port = int(env, 'PORT', 3000, 0, 65535);
  const host = str(env, 'HOST') ?? '0.0.0.0';
  const publicUrl = (url(env, 'PUBLIC_URL', ['http:', 'https:']) ?? `http://localhost:${port}`).replace(/\/+$/, '');
  pairRequired(env, 'TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN');
  const twilioSid = str(env, 'TWILIO_ACCOUNT_SID');
  if (twilioSid && !/^AC[0-9a-fA-F]{32}$/.test(twilioSid)) {
    throw new ConfigError('TWILIO_ACCOUNT_SID', 'must look like AC followed by 32 hex characters');
  }
  const stripeKey = str(env, 'STRIPE_SECRET_KEY');
  if (stripeKey && !/^(sk|rk)_(test|live)_/.test(stripeKey)) {
    throw new ConfigError('STRIPE_SECRET_KEY', 'must start with sk_test_, sk_live_, rk_test_ or rk_live_');
  }

  return {
    env: nodeEnv,
    host,
    port,
    publicUrl,
    dataDir: resolve(str(env, 'DATA_DIR') ?? './data'),
    voicesDir: resolve(str(env, 'VOICES_DIR') ?? resolve(str(env, 'DATA_DIR') ?? './data', 'voices')),
    piperVoicesUrl: (url(env, 'PIPER_VOICES_URL', ['http:', 'https:']) ?? 'https://huggingface.co/rhasspy/piper-voices/resolve/v1.0.0').replace(/\/+$/, ''),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, nodeEnv === 'test' ? 'silent' : 'info'),
    rateLimitPerMinute: int(env, 'RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 1_048_576, 1024, 100 * 1_048_576),
    sessionTtlHours: int(env, 'SESSION_TTL_HOURS', 24 * 7, 1, 24 * 365),
    autoBootstrap: bool(env, 'AUTO_BOOTSTRAP', true),
    bootstrapEmail: str(env, 'BOOTSTRAP_EMAIL') ?? 'owner@vocelio.local',
    trustProxy: trustProxy(env),
    http: httpTimeouts(env),
    mediaStream: {
      startTimeoutMs: int(env, 'MEDIA_START_TIMEOUT_MS', 5000, 100, 60_000),
      maxPending: int(env, 'MEDIA_PENDING_SOCKETS_MAX', 200, 1, 100_000),
      maxPendingPerAddress: int(env, 'MEDIA_PENDING_SOCKETS_PER_ADDRESS', 20, 1, 100_000),
    },
    events: {
      pollMs: int(env, 'EVENTS_POLL_MS', 2000, 10, 60_000),
      retentionDays: int(env, 'EVENTS_RETENTION_DAYS', 30, 1, 3650),
      streamHeartbeatMs: int(env, 'EVENT_STREAM_HEARTBEAT_MS', 15_000, 10, 300_000),
      streamMaxBufferedBytes: int(env, 'EVENT_STREAM_MAX_BUFFERED_BYTES', 1_048_576, 1024, 64 * 1_048_576),
      streamMaxPerOrganization: int(env, 'EVENT_STREAM_MAX_PER_ORGANIZATION', 100, 1, 100_000),
    },
    lifecycle: lifecycleConfig(env),
    metricsToken: str(env, 'METRICS_TOKEN'),
    toolsAllowPrivateNetwork: bool(env, 'TOOLS_ALLOW_PRIVATE_NETWORK', false),
    secretsKey: secretsKey(env),
    recordingsS3: s3SettingsFromEnv(env),
    providers: {
      twilio: {
        accountSid: twilioSid,
        authToken: str(env, 'TWILIO_AUTH_TOKEN'),
        apiKeySid: str(env, 'TWILIO_API_KEY'),
        apiKeySecret: str(env, 'TWILIO_API_SECRET'),
        baseUrl: url(env, 'TWILIO_BASE_URL', ['http:', 'https:']),
      },
      deepgram: { apiKey: str(env, 'DEEPGRAM_API_KEY'), baseUrl: url(env, 'DEEPGRAM_BASE_URL', ['http:', 'https:', 'ws:', 'wss:']) },
      openai: { apiKey: str(env, 'OPENAI_API_KEY'), baseUrl: url(env, 'OPENAI_BASE_URL', ['http:', 'https:']), name: str(env, 'OPENAI_PROVIDER_NAME') },
      elevenlabs: { apiKey: str(env, 'ELEVENLABS_API_KEY'), baseUrl: url(env, 'ELEVENLABS_BASE_URL', ['http:', 'https:']) },
      stripe: {
        secretKey: stripeKey,
        webhookSecret: str(env, 'STRIPE_WEBHOOK_SECRET'),
        baseUrl: url(env, 'STRIPE_BASE_URL', ['http:', 'https:']),
      },
    },
  };
}

/**
 * Reads `.env` from the working directory (if any) beneath the real environment: variables already set
 * win, so a deployment can always override the file.
 */
export function loadDotenv(path = resolve('.env'), env: Env = process.env): void {
  if (!existsSync(path)) return;
  const parsed = parseDotenv(readFileSync(path));
  for (const [k, v] of Object.entries(parsed)) if (env[k] === undefined) env[k] = v;
}
