// The durable event catalogue. Adding a type is two lines: its payload below and its one-line description in
// EVENT_TYPE_DOCS (the compiler refuses a type without one). Payloads are JSON: ids, ISO times, numbers.

/** Payload of each durable event type, keyed by type. */
export interface EventPayloads {
  'call.created': {
    callId: string;
    direction: 'inbound' | 'outbound';
    agentId: string | null;
    from: string | null;
    to: string | null;
    status: string;
    campaignId: string | null;
    contactId: string | null;
  };
  'call.started': { callId: string; startedAt: string; providerCallSid: string | null; streamSid: string };
  'call.answered': { callId: string; answeredAt: string; answeredBy: string | null };
  'call.ended': {
    callId: string;
    status: string;
    endReason: string;
    endDetail: string | null;
    endedAt: string;
    answeredAt: string | null;
    durationSeconds: number | null;
  };
  'call.recording.ready': { callId: string; bytes: number };
  'call.transcript.ready': { callId: string; turns: number };
}

/** Every durable event type. */
export type EventType = keyof EventPayloads;

/** What each type means: the OpenAPI description and the README list come from here. */
export const EVENT_TYPE_DOCS: { readonly [K in EventType]: string } = {
  'call.created': 'a call record exists (inbound webhook, outbound request, test call); nothing has been said yet',
  'call.started': 'the media stream of the call started: the agent is on the line',
  'call.answered': 'the call was answered (by a person or a machine: see answeredBy)',
  'call.ended': 'the call is over and final: status, end reason, duration and answer time will not change',
  'call.recording.ready': 'the recording of the call is stored and can be downloaded',
  'call.transcript.ready': 'the transcript of the call is complete',
};

/** Every durable event type, for validation and documentation. */
export const EVENT_TYPES = Object.keys(EVENT_TYPE_DOCS) as EventType[];

/** A durable event as written by a producer: the id, sequence and time are the outbox's. */
export type NewEvent<T extends EventType = EventType> = {
  [K in T]: { organizationId: string; type: K; subject: string; payload: EventPayloads[K] };
}[T];

/**
 * A durable event as stored and delivered. `seq` is its position in commit order (see EventsService.stamp);
 * `subject` is what it is about (the call id for `call.*`).
 */
export type StoredEvent<T extends EventType = EventType> = {
  [K in T]: { id: string; seq: number; organizationId: string; type: K; subject: string; payload: EventPayloads[K]; createdAt: string };
}[T];

/** A type filter: an exact type, a prefix wildcard (`call.*`, `call.recording.*`) or `*` for everything. */
export type TypePattern = EventType | `${string}.*` | '*';

/** The event types a pattern admits, so a consumer of `['call.ended']` is handed `StoredEvent<'call.ended'>`. */
export type MatchingTypes<P extends TypePattern> = P extends '*'
  ? EventType
  : P extends `${infer Prefix}.*`
    ? Extract<EventType, `${Prefix}.${string}`>
    : Extract<P, EventType>;

// Lower-case words joined by dots, optionally ending in `.*`; or `*` alone.
const PATTERN = /^(\*|[a-z][a-z_]*(\.[a-z][a-z_]*)*(\.\*)?)$/;

/** Whether a filter pattern is well formed (a pattern that names no type today is allowed: types get added). */
export const isTypePattern = (pattern: string): boolean => PATTERN.test(pattern);

/** Whether `type` (durable or live) is admitted by `pattern`. */
export function typeMatches(pattern: string, type: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

/** Whether any of `patterns` admits `type`. */
export const anyTypeMatches = (patterns: readonly string[], type: string): boolean => patterns.some((p) => typeMatches(p, type));
