import { pgTable, text, timestamp, index, check, uniqueIndex, jsonb, integer, boolean } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { organizations } from '../organizations/organizations.table.js';
import { agents } from '../agents/agents.table.js';
import { phoneNumbers } from '../numbers/numbers.table.js';

/** Where a call is in its life; Twilio's call statuses plus our own `in_progress` for a live media stream. */
export const CALL_STATUSES = ['queued', 'initiated', 'ringing', 'in_progress', 'completed', 'busy', 'no_answer', 'failed', 'canceled'] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];

/** Who or what answered, from answering-machine detection. */
export const ANSWERED_BY = ['human', 'machine', 'fax', 'unknown'] as const;
export type AnsweredBy = (typeof ANSWERED_BY)[number];

/** Why a call ended, from our side of the media stream. */
export const END_REASONS = [
  'stream_stopped',
  'socket_closed',
  'agent_hangup',
  'max_duration',
  'worker_crashed',
  'protocol_error',
  'server_shutdown',
  /** The caller stayed silent through the re-prompts. */
  'silence_timeout',
  /** Busy, no answer, failed or canceled before anyone answered (the status says which). */
  'not_answered',
  /** `POST /v1/calls/:id/hangup`. */
  'hangup_requested',
  /** Handed to another number by the agent's transfer tool. */
  'transferred',
  /** An answering machine picked up and the agent's voicemail behaviour ran. */
  'voicemail',
  /** The carrier reported the call over before our media stream ended it (e.g. the stream never started). */
  'carrier_completed',
  /** A speech or language provider failed with no fallback left. */
  'provider_error',
  /** The `serve` process holding the call's media died (found by the node-lease sweep after a restart). */
  'server_crashed',
  /** An outbound call never got a carrier id: the process died between asking the carrier and storing its answer. */
  'placement_unknown',
  'error',
] as const;
export type EndReason = (typeof END_REASONS)[number];

/**
 * One phone call. Created before media flows (by the webhook or the outbound API), closed by the call
 * session with an end reason; the row is the record billing and the API read.
 */
export const calls = pgTable(
  'calls',
  {
    id: text('id').primaryKey(),
    organizationId: text('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    agentId: text('agent_id').references(() => agents.id),
    direction: text('direction', { enum: ['inbound', 'outbound'] }).notNull(),
    status: text('status', { enum: CALL_STATUSES }).notNull().default('queued'),
    providerCallSid: text('provider_call_sid'),
    streamSid: text('stream_sid'),
    fromNumber: text('from_number'),
    toNumber: text('to_number'),
    phoneNumberId: text('phone_number_id').references(() => phoneNumbers.id),
    campaignId: text('campaign_id'),
    contactId: text('contact_id'),
    /** `Idempotency-Key` of the request that placed the call; one call per key and organization. */
    idempotencyKey: text('idempotency_key'),
    /** Answering-machine detection was requested: the agent waits for its verdict before speaking first. */
    machineDetection: boolean('machine_detection').notNull().default(false),
    answeredBy: text('answered_by', { enum: ANSWERED_BY }),
    answeredAt: timestamp('answered_at', { withTimezone: true }),
    /** The carrier's billed duration, set once from its final status callback. */
    durationSeconds: integer('duration_seconds'),
    /** Recording file (relative to the recordings store), when the agent records calls. */
    recordingKey: text('recording_key'),
    recordingBytes: integer('recording_bytes'),
    /** Where the agent's transfer tool sent the call, and the summary whispered to the person answering. */
    transfer: jsonb('transfer').$type<{ to: string; summary?: string }>(),
    /** Set by DELETE: transcript and recording are gone, the row stays for billing. */
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
    /** Per-call values for the agent's `{{variables}}`, over the agent's defaults. */
    variables: jsonb('variables').$type<Record<string, string>>().notNull().default({}),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    /** The first end signal: media closed, the carrier's final status, or a recorded cause (hangup, transfer). */
    endedAt: timestamp('ended_at', { withTimezone: true }),
    /** The cause of the end; the first one recorded wins (see CallLifecycle). */
    endReason: text('end_reason', { enum: END_REASONS }),
    endDetail: text('end_detail'),
    /** The `serve` node holding the call's media stream; its lease running out ends the call `server_crashed`. */
    mediaNodeId: text('media_node_id'),
    /** Our media side closed. */
    mediaEndedAt: timestamp('media_ended_at', { withTimezone: true }),
    /** The carrier's final status (completed, busy, no_answer, failed, canceled) and when it arrived. */
    carrierStatus: text('carrier_status', { enum: CALL_STATUSES }),
    carrierFinalAt: timestamp('carrier_final_at', { withTimezone: true }),
    /** Set exactly once, when status, end reason, duration and answer time became final and `call.ended` was written. */
    finalizedAt: timestamp('finalized_at', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('calls_org_idx').on(t.organizationId, t.id),
    uniqueIndex('calls_provider_sid_key').on(t.providerCallSid),
    uniqueIndex('calls_idempotency_key').on(t.organizationId, t.idempotencyKey),
    index('calls_org_created_idx').on(t.organizationId, t.createdAt),
    // The lifecycle sweep looks only at calls not yet final.
    index('calls_unfinalized_idx').on(t.createdAt).where(sql`${t.finalizedAt} is null`),
    check('calls_direction_check', sql`${t.direction} in ('inbound', 'outbound')`),
  ],
);

export type CallRow = typeof calls.$inferSelect;

/**
 * Single-use, short-lived tokens that authorize one Media Streams socket for one call. Only the hash is
 * stored; consuming one is a single conditional UPDATE, so two sockets can never both win.
 */
export const streamTokens = pgTable(
  'stream_tokens',
  {
    tokenHash: text('token_hash').primaryKey(),
    callId: text('call_id')
      .notNull()
      .references(() => calls.id, { onDelete: 'cascade' }),
    organizationId: text('organization_id').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
  },
  (t) => [index('stream_tokens_expires_idx').on(t.expiresAt)],
);

/** Latency parts of one assistant turn, in ms; provider parts are separated from our own overhead. */
export interface TurnLatency {
  /**
   * What the caller waited: their last voiced frame (stream audio above -35 dBFS, the simulator's level rule)
   * arriving here -> the first frame of the answer sent. It is the sum of `endOfTurnMs`, `llmFirstTokenMs`,
   * `firstChunkMs`, `ttsFirstByteMs` and `overheadMs`.
   */
  callerWaitMs?: number;
  /** Caller's last voiced frame to the turn confirmed (VAD silence, then the STT final): the end-of-turn wait. */
  endOfTurnMs?: number;
  /** Caller's end of speech (VAD) to the STT's final transcript (0 when the final came first); part of `endOfTurnMs`. */
  sttFinalMs?: number;
  /** LLM request to its first token. */
  llmFirstTokenMs?: number;
  /** LLM request to the first complete sentence (what TTS can start on). */
  llmFirstSentenceMs?: number;
  /** LLM first token to the first speakable chunk (`llmFirstSentenceMs - llmFirstTokenMs`). */
  firstChunkMs?: number;
  /** First sentence handed to TTS to its first audio byte. */
  ttsFirstByteMs?: number;
  /** Caller's end of speech to the first outbound audio frame. */
  firstFrameOutMs?: number;
  /**
   * The time spent in our own code: from the turn confirmed to the first frame out, minus LLM time to the first
   * chunk and TTS time to the first byte (before the turn's confirmation time was kept: firstFrameOutMs minus
   * the provider parts).
   */
  overheadMs?: number;
}

/** Who spoke a turn. `tool` turns record a tool call and its result. */
export const TURN_ROLES = ['user', 'assistant', 'tool'] as const;

/**
 * The transcript, one row per turn, written as the call happens: a crash mid-call keeps every turn
 * already taken. An assistant turn's text is what the caller heard (cut at barge-in).
 */
export const callTurns = pgTable(
  'call_turns',
  {
    id: text('id').primaryKey(),
    organizationId: text('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    callId: text('call_id')
      .notNull()
      .references(() => calls.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    role: text('role', { enum: TURN_ROLES }).notNull(),
    text: text('text').notNull(),
    /** `speech`, `dtmf`, `first_message`, `filler`, `reprompt`, `goodbye`, `tool_call`. */
    kind: text('kind').notNull().default('speech'),
    interrupted: boolean('interrupted').notNull().default(false),
    latency: jsonb('latency').$type<TurnLatency>(),
    /** Tool calls: name, arguments and outcome. */
    detail: jsonb('detail').$type<Record<string, unknown>>(),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
    endedAt: timestamp('ended_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('call_turns_call_seq_key').on(t.callId, t.seq), index('call_turns_org_idx').on(t.organizationId, t.callId)],
);

export type CallTurnRow = typeof callTurns.$inferSelect;
