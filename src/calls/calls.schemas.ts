import { Type, type Static } from 'typebox';
import { CALL_STATUSES, END_REASONS, ANSWERED_BY, TURN_ROLES, type CallRow, type CallTurnRow } from './calls.table.js';
import type { UsageRecordRow } from '../billing/usage.table.js';
import { IdString, NullableIdString, NullableTimestamp, PageQuery, StringEnum, Timestamp } from '../shared/schemas.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Variables = Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' }), Type.String({ maxLength: 2000 }), {
  maxProperties: 100,
  additionalProperties: false,
  description: "values for the agent's {{variables}} on this call",
});

/** Body of `POST /v1/calls`. */
export const CallCreate = Type.Object(
  {
    agentId: IdString('agt'),
    to: Type.String({ minLength: 1, maxLength: 32, description: 'E.164 number to call, e.g. +14155550123' }),
    from: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'one of your numbers (E.164); default: the number assigned to the agent' })),
    phoneNumberId: Type.Optional(IdString('pn')),
    variables: Type.Optional(Variables),
    machineDetection: Type.Boolean({ default: true, description: 'answering-machine detection: machines get the agent voicemail behaviour' }),
  },
  { additionalProperties: false },
);

/** A call as the API shows it. */
export const Call = Type.Object({
  id: IdString('call'),
  direction: StringEnum(['inbound', 'outbound'] as const),
  status: StringEnum(CALL_STATUSES),
  agentId: NullableIdString('agt'),
  phoneNumberId: NullableIdString('pn'),
  campaignId: Nullable(Type.String()),
  from: Nullable(Type.String()),
  to: Nullable(Type.String()),
  providerCallSid: Nullable(Type.String()),
  answeredBy: Nullable(StringEnum(ANSWERED_BY)),
  createdAt: Timestamp,
  startedAt: NullableTimestamp,
  answeredAt: NullableTimestamp,
  endedAt: NullableTimestamp,
  endReason: Nullable(StringEnum(END_REASONS, { description: 'why the call ended: the cause (an API hangup, a transfer, the agent), not the last socket event' })),
  endDetail: Nullable(Type.String()),
  durationSeconds: Nullable(Type.Integer({ description: "the carrier's billed duration, else ours from answer to end; 0 when never answered" })),
  finalizedAt: Nullable(Type.String({ format: 'date-time', description: 'when status, end reason, duration and answer time became final (call.ended was sent); null while the call is live or ending' })),
  recording: Nullable(Type.Object({ url: Type.String(), bytes: Type.Integer() })),
});

const Latency = Type.Object(
  {
    callerWaitMs: Type.Optional(Type.Number({ description: "caller's last voiced frame received -> first answer frame sent: endOfTurnMs + llmFirstTokenMs + firstChunkMs + ttsFirstByteMs + overheadMs" })),
    endOfTurnMs: Type.Optional(Type.Number({ description: "caller's last voiced frame -> turn confirmed (VAD silence and STT final wait)" })),
    sttFinalMs: Type.Optional(Type.Number({ description: 'VAD end of speech -> STT final (part of endOfTurnMs)' })),
    llmFirstTokenMs: Type.Optional(Type.Number()),
    llmFirstSentenceMs: Type.Optional(Type.Number()),
    firstChunkMs: Type.Optional(Type.Number({ description: 'LLM first token -> first speakable chunk' })),
    ttsFirstByteMs: Type.Optional(Type.Number()),
    firstFrameOutMs: Type.Optional(Type.Number({ description: 'VAD end of speech -> first answer frame sent' })),
    overheadMs: Type.Optional(Type.Number({ description: 'our own code: turn confirmed -> first frame sent, minus LLM and TTS time' })),
  },
  { description: 'ms: what the caller waited for the answer and its parts (end-of-turn wait, STT final, LLM first token, first chunk, TTS first byte, our overhead)' },
);

/** One turn of the transcript. */
export const Turn = Type.Object({
  seq: Type.Integer(),
  role: StringEnum(TURN_ROLES),
  kind: Type.String(),
  text: Type.String({ description: "for the agent: what the caller heard (cut at barge-in)" }),
  interrupted: Type.Boolean(),
  startedAt: Timestamp,
  endedAt: NullableTimestamp,
  latency: Nullable(Latency),
  detail: Nullable(Type.Object({}, { additionalProperties: true })),
});

/** A call with its transcript, latencies, usage and recording. */
export const CallDetail = Type.Object({
  ...Call.properties,
  variables: Type.Record(Type.String(), Type.String()),
  transfer: Nullable(Type.Object({ to: Type.String(), summary: Type.Optional(Type.String()) })),
  transcript: Type.Array(Turn),
  usage: Type.Array(Type.Object({ meter: Type.String(), provider: Type.String(), model: Type.String(), quantity: Type.Number() })),
  cost: Nullable(Type.Object({ amount: Type.Integer(), currency: Type.String() }, { description: 'priced by billing; null until then' })),
});

/** Query of `GET /v1/calls`. */
export const CallListQuery = Type.Object(
  {
    ...PageQuery.properties,
    status: Type.Optional(StringEnum(CALL_STATUSES)),
    direction: Type.Optional(StringEnum(['inbound', 'outbound'] as const)),
    agentId: Type.Optional(IdString('agt')),
    campaignId: Type.Optional(Type.String({ maxLength: 64 })),
    phoneNumberId: Type.Optional(IdString('pn')),
    createdAfter: Type.Optional(Type.String({ format: 'date-time', description: 'inclusive' })),
    createdBefore: Type.Optional(Type.String({ format: 'date-time', description: 'exclusive' })),
  },
  { additionalProperties: false },
);

/** The API view of a call row. */
export function presentCall(c: CallRow): Static<typeof Call> {
  return {
    id: c.id,
    direction: c.direction,
    status: c.status,
    agentId: c.agentId,
    phoneNumberId: c.phoneNumberId,
    campaignId: c.campaignId,
    from: c.fromNumber,
    to: c.toNumber,
    providerCallSid: c.providerCallSid,
    answeredBy: c.answeredBy,
    createdAt: c.createdAt.toISOString(),
    startedAt: c.startedAt?.toISOString() ?? null,
    answeredAt: c.answeredAt?.toISOString() ?? null,
    endedAt: c.endedAt?.toISOString() ?? null,
    endReason: c.endReason,
    endDetail: c.endDetail,
    durationSeconds: c.durationSeconds,
    finalizedAt: c.finalizedAt?.toISOString() ?? null,
    recording: c.recordingKey ? { url: `/v1/calls/${c.id}/recording`, bytes: c.recordingBytes ?? 0 } : null,
  };
}

/** The API view of a call with its transcript and usage. */
export function presentCallDetail(c: CallRow, turns: CallTurnRow[], usage: UsageRecordRow[]): Static<typeof CallDetail> {
  return {
    ...presentCall(c),
    variables: c.variables,
    transfer: c.transfer ?? null,
    transcript: turns.map((t) => ({
      seq: t.seq,
      role: t.role,
      kind: t.kind,
      text: t.text,
      interrupted: t.interrupted,
      startedAt: t.startedAt.toISOString(),
      endedAt: t.endedAt?.toISOString() ?? null,
      latency: t.latency ?? null,
      detail: t.detail ?? null,
    })),
    usage: usage.map((u) => ({ meter: u.meter, provider: u.provider, model: u.model, quantity: u.quantity })),
    cost: null,
  };
}
