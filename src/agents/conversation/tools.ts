import { Ajv, type ValidateFunction } from 'ajv';
import { safeFetch, type SafeFetchOptions } from '../../shared/safe-fetch.js';
import type { AgentTool, HttpTool, TransferDestination } from '../agents.schemas.js';
import type { ToolCall, ToolSpec } from '../../media/providers.js';

/** What running a tool produced: text for the LLM, and for `end_call` the instruction to hang up. */
export type ToolOutcome =
  | { kind: 'result'; content: string; ok: boolean; status?: number; ms: number }
  | { kind: 'end_call'; content: string; reason?: string }
  /** Hand the caller to `to`; the engine does it once the caller has heard what the agent said. */
  | { kind: 'transfer'; content: string; to: string; destination: string; summary?: string };

/** Options of the tool runner. */
export interface ToolRunnerOptions {
  /** Allow HTTP tools on loopback and private networks (tests, self-hosted intranets); default off: SSRF. */
  allowPrivateNetwork?: boolean;
  /** The call has a carrier leg that can be transferred (not a test call). */
  canTransfer?: boolean;
}

// A tool's answer goes into the LLM's context; a huge body would cost tokens and time for nothing.
const MAX_RESULT_CHARS = 4000;
const DEFAULT_TIMEOUT_MS = 5000;
// Enough bytes for MAX_RESULT_CHARS of any UTF-8 text; the rest is never read.
const MAX_RESPONSE_BYTES = MAX_RESULT_CHARS * 4;

const END_CALL: ToolSpec = {
  name: 'end_call',
  description: 'Hang up the call after saying goodbye. Use when the conversation is complete or the caller asks to end it.',
  parameters: { type: 'object', properties: { reason: { type: 'string', description: 'why the call ends' } }, additionalProperties: false },
};

/** The agent's tools: what the LLM is offered and how each call is carried out. */
export class ToolRunner {
  private readonly http = new Map<string, { tool: HttpTool; validate: ValidateFunction }>();
  private readonly builtins = new Set<string>();
  private destinations: TransferDestination[] = [];

  constructor(
    tools: readonly AgentTool[],
    private readonly options: ToolRunnerOptions = {},
  ) {
    const ajv = new Ajv({ strict: false, allErrors: false, coerceTypes: false });
    for (const tool of tools) {
      if (tool.type === 'builtin') {
        this.builtins.add(tool.name);
        if (tool.name === 'transfer_call') this.destinations = tool.destinations ?? [];
      }
      else this.http.set(tool.name, { tool, validate: ajv.compile(tool.parameters) });
    }
  }

  /** Tool definitions for the LLM; `transfer_call` only on calls with a carrier leg. */
  specs(): ToolSpec[] {
    const specs: ToolSpec[] = [];
    if (this.builtins.has('end_call')) specs.push(END_CALL);
    if (this.builtins.has('transfer_call') && this.options.canTransfer && this.destinations.length > 0) {
      const list = this.destinations.map((d) => `${d.name}${d.description ? ` (${d.description})` : ''}`).join('; ');
      specs.push({
        name: 'transfer_call',
        description: `Transfer the caller to a person. Tell the caller first. Destinations: ${list}.`,
        parameters: {
          type: 'object',
          properties: {
            destination: { type: 'string', enum: this.destinations.map((d) => d.name) },
            summary: { type: 'string', description: 'one or two sentences about the caller and their request, for the person taking the call' },
          },
          required: ['destination'],
          additionalProperties: false,
        },
      });
    }
    for (const { tool } of this.http.values()) specs.push({ name: tool.name, description: tool.description, parameters: tool.parameters as Record<string, unknown> });
    return specs;
  }

  /** The line to say while `name` runs, if the agent configured one. */
  fillerFor(name: string): string | undefined {
    return this.http.get(name)?.tool.fillerMessage;
  }

  /** Runs one tool call; failures become a result the LLM can explain to the caller, never a throw. */
  async run(call: ToolCall, signal: AbortSignal): Promise<ToolOutcome> {
    const started = performance.now();
    const fail = (message: string, status?: number): ToolOutcome => ({ kind: 'result', ok: false, content: JSON.stringify({ error: message }), status, ms: performance.now() - started });
    let args: unknown;
    try {
      args = call.arguments.trim() === '' ? {} : JSON.parse(call.arguments);
    } catch {
      return fail('arguments are not valid JSON');
    }
    if (call.name === 'end_call' && this.builtins.has('end_call')) {
      const reason = typeof (args as { reason?: unknown }).reason === 'string' ? (args as { reason: string }).reason : undefined;
      return { kind: 'end_call', content: JSON.stringify({ ok: true }), reason };
    }
    if (call.name === 'transfer_call' && this.builtins.has('transfer_call') && this.options.canTransfer) {
      const { destination, summary } = args as { destination?: unknown; summary?: unknown };
      const target = this.destinations.find((d) => d.name === destination);
      if (!target) return fail(`unknown destination ${String(destination)}; use one of ${this.destinations.map((d) => d.name).join(', ')}`);
      return { kind: 'transfer', content: JSON.stringify({ ok: true, transferring: target.name }), to: target.number, destination: target.name, summary: typeof summary === 'string' ? summary.slice(0, 500) : undefined };
    }
    const entry = this.http.get(call.name);
    if (!entry) return fail(`unknown tool ${call.name}`);
    if (!entry.validate(args)) {
      const e = entry.validate.errors?.[0];
      return fail(`invalid arguments: ${e ? `${e.instancePath || '(root)'} ${e.message ?? ''}` : 'schema mismatch'}`.trim());
    }
    const { tool } = entry;
    const timeoutMs = tool.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const method = tool.method ?? 'POST';
    let url: URL;
    try {
      url = new URL(tool.url);
    } catch {
      return fail('the tool URL is not a valid URL');
    }
    const headers: Record<string, string> = { accept: 'application/json, text/plain;q=0.9', 'user-agent': 'vocelio-tools/1', ...(tool.headers ?? {}) };
    let body: string | undefined;
    if (method === 'GET' || method === 'DELETE') {
      for (const [k, v] of Object.entries(args as Record<string, unknown>)) url.searchParams.set(k, typeof v === 'string' ? v : JSON.stringify(v));
    } else {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(args);
    }
    // Tool URLs are written by tenants: safeFetch keeps them off loopback and private networks (SSRF), also
    // when a name resolves there only now, unless the operator opted out.
    const request: SafeFetchOptions = { method, headers, body, signal, timeoutMs, maxResponseBytes: MAX_RESPONSE_BYTES, redirect: 'error', allowPrivateNetwork: this.options.allowPrivateNetwork ?? false };
    try {
      const res = await safeFetch(url, request);
      const text = res.text().slice(0, MAX_RESULT_CHARS);
      if (!res.ok) return fail(`HTTP ${res.status}: ${text.slice(0, 500)}`, res.status);
      return { kind: 'result', ok: true, content: text, status: res.status, ms: performance.now() - started };
    } catch (err) {
      if (signal.aborted) throw err;
      return fail((err as Error).message);
    }
  }
}
