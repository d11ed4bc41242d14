import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';
import type { AddressPolicy } from './address-policy.js';
import { addressPolicyFor, checkOutboundUrl, isOutboundUrlProblem, type OutboundUrlFailure, type OutboundUrlOptions } from './outbound-url.js';

/** Resolves a host name to every address it has; `dns.lookup` with `all: true` in promise form. */
export type SafeLookup = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), as connections would use it anyway. */
export const systemLookup: SafeLookup = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/** Whether and how redirects are followed. Every hop is checked like the first URL. */
export type RedirectPolicy = 'error' | 'manual' | { follow: number };

/** Why a safe fetch failed, as a stable code. */
export type SafeFetchFailure = OutboundUrlFailure | 'dns' | 'redirect' | 'too_many_redirects' | 'timeout' | 'aborted' | 'network';

/** A request to a tenant-chosen URL that was refused or did not complete. */
export class SafeFetchError extends Error {
  constructor(
    readonly reason: SafeFetchFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SafeFetchError';
  }
}

/** One request to a URL a tenant chose. */
export interface SafeFetchOptions extends OutboundUrlOptions {
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Aborts the request (a call ending, a barge-in); the error's reason is then `aborted`. */
  signal?: AbortSignal;
  /** The whole exchange, redirects and body included; default 10 s. */
  timeoutMs?: number;
  /** The body is cut here and `truncated` set; default 1 MiB. */
  maxResponseBytes?: number;
  /** Default `error`: a 3xx with a Location fails the request. */
  redirect?: RedirectPolicy;
  /** The resolver; default the system's. Tests pass a stub. */
  lookup?: SafeLookup;
}

/** A completed exchange, body read (up to the limit). */
export interface SafeResponse {
  /** The URL that answered (after redirects). */
  url: string;
  status: number;
  ok: boolean;
  headers: Record<string, string>;
  body: Uint8Array;
  truncated: boolean;
  redirects: number;
  /** The body as UTF-8. */
  text(): string;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
// Sent on to another origin after a redirect; anything else (Authorization, API keys in custom headers) was
// meant for the first origin only.
const CROSS_ORIGIN_HEADERS = new Set(['accept', 'accept-language', 'user-agent', 'content-type']);

/**
 * Requests a URL a tenant chose (HTTP tools, outbound webhooks) without letting it reach our own networks.
 * The URL is checked without I/O first; a host name is then resolved exactly once per connection, inside the
 * connection's own `lookup`, every address it returns must pass the address rule, and the socket connects to
 * those addresses only, so DNS cannot answer one thing to the check and another to the connection
 * (rebinding). TLS still verifies the certificate against the host name. Each redirect hop is checked again.
 */
export async function safeFetch(target: string | URL, options: SafeFetchOptions = {}): Promise<SafeResponse> {
  const policy = addressPolicyFor(options);
  const urlOptions: OutboundUrlOptions = { allowPrivateNetwork: options.allowPrivateNetwork ?? false, addressPolicy: policy };
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  const agent = new Agent({
    connect: { lookup: pinnedLookup(options.lookup ?? systemLookup, policy), timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  let method: string = options.method ?? 'GET';
  let body = options.body;
  let headers: Record<string, string> = { ...options.headers };
  const follow = typeof options.redirect === 'object' ? options.redirect.follow : 0;
  try {
    let url = checked(target, urlOptions);
    for (let redirects = 0; ; redirects++) {
      const res = await request(url, { dispatcher: agent, method: method as Dispatcher.HttpMethod, headers, body, signal });
      const location = headerValue(res.headers.location);
      if (REDIRECTS.has(res.statusCode) && location && options.redirect !== 'manual') {
        await res.body.dump();
        if (follow === 0) throw new SafeFetchError('redirect', `answered ${res.statusCode} to ${location}; redirects are not followed`);
        if (redirects >= follow) throw new SafeFetchError('too_many_redirects', `more than ${follow} redirects`);
        const next = checked(new URL(location, url), urlOptions, 'redirect to ');
        if (next.origin !== url.origin) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => CROSS_ORIGIN_HEADERS.has(k.toLowerCase())));
        // What browsers do: 303 (and 301/302 after a POST) turn into a GET without a body.
        if ((res.statusCode === 303 && method !== 'HEAD') || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
          headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'content-type'));
        }
        url = next;
        continue;
      }
      const read = await readLimited(res.body, options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES);
      return {
        url: url.href,
        status: res.statusCode,
        ok: res.statusCode >= 200 && res.statusCode < 300,
        headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, headerValue(v) ?? ''])),
        body: read.bytes,
        truncated: read.truncated,
        redirects,
        text: () => new TextDecoder().decode(read.bytes),
      };
    }
  } catch (err) {
    throw asSafeFetchError(err, { caller: options.signal, deadline, timeoutMs });
  } finally {
    // Nothing is pooled across calls: a kept-alive socket would outlive the check that admitted it.
    await agent.destroy().catch(() => {});
  }
}

function checked(target: string | URL, opts: OutboundUrlOptions, prefix = ''): URL {
  const result = checkOutboundUrl(target, opts);
  if (isOutboundUrlProblem(result)) throw new SafeFetchError(result.reason, `${prefix}${String(target)} refused: ${result.message}`);
  return result.url;
}

/**
 * The connection's resolver: one resolution, every address checked, and only those addresses handed to the
 * socket. Node's `net` skips `lookup` for IP literals, which is why literals are checked with the URL.
 */
export function pinnedLookup(resolve: SafeLookup, policy: AddressPolicy): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname)
      .catch((err: unknown) => {
        throw new SafeFetchError('dns', `could not resolve ${hostname}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      })
      .then((found) => {
        if (found.length === 0) throw new SafeFetchError('dns', `${hostname} has no address`);
        const addresses: LookupAddress[] = [];
        for (const { address } of found) {
          // Any refused address refuses the name: happy eyeballs would otherwise fall back to it.
          const why = policy(address);
          if (why) throw new SafeFetchError('blocked_address', `${hostname} resolves to a refused address: ${why}`);
          addresses.push({ address, family: isIP(address) });
        }
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
        const first = wanted[0];
        if (!first) throw new SafeFetchError('dns', `${hostname} has no IPv${String(options.family)} address`);
        if (options.all) callback(null, wanted);
        else callback(null, first.address, first.family);
      })
      .catch((err: NodeJS.ErrnoException) => callback(err, '', 0));
  };
}

async function readLimited(body: Dispatcher.ResponseData['body'], max: number): Promise<{ bytes: Uint8Array; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of body) {
    const piece = chunk as Buffer;
    if (size + piece.length > max) {
      chunks.push(piece.subarray(0, max - size));
      size = max;
      truncated = true;
      break;
    }
    chunks.push(piece);
    size += piece.length;
  }
  if (truncated) body.destroy();
  return { bytes: Buffer.concat(chunks, size), truncated };
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

function asSafeFetchError(err: unknown, ctx: { caller?: AbortSignal; deadline: AbortSignal; timeoutMs: number }): SafeFetchError {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e instanceof SafeFetchError) return e;
  if (ctx.caller?.aborted) return new SafeFetchError('aborted', 'the request was aborted', { cause: err });
  if (ctx.deadline.aborted) return new SafeFetchError('timeout', `timed out after ${ctx.timeoutMs} ms`, { cause: err });
  const e = err as NodeJS.ErrnoException;
  return new SafeFetchError('network', `request failed: ${e.code ? `${e.code} ` : ''}${e.message}`, { cause: err });
}
