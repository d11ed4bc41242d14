import { and, desc, eq, gt, gte, isNull, lt, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { newId, randomToken } from '../shared/ids.js';
import { notFound } from '../shared/errors.js';
import { sha256 } from '../auth/api-keys.service.js';
import { EventsService } from '../events/events.service.js';
import { calls, callTurns, streamTokens, type CallRow, type CallStatus } from './calls.table.js';

/** What is known about a call before its media arrives. */
export interface NewCall {
  agentId: string | null;
  direction: 'inbound' | 'outbound';
  fromNumber?: string;
  toNumber?: string;
  providerCallSid?: string;
  /** Values for the agent's `{{variables}}` on this call. */
  variables?: Record<string, string>;
  phoneNumberId?: string | null;
  idempotencyKey?: string;
  status?: CallStatus;
  campaignId?: string;
  contactId?: string;
  machineDetection?: boolean;
}

/** Filters of the calls list. */
export interface CallFilters {
  limit: number;
  beforeId?: string;
  status?: CallStatus;
  direction?: 'inbound' | 'outbound';
  agentId?: string;
  campaignId?: string;
  phoneNumberId?: string;
  createdAfter?: Date;
  createdBefore?: Date;
}

/** Why a stream token was refused; logged, never told to the peer. */
export type TokenRejection = 'missing' | 'unknown' | 'expired' | 'reused';

/** The outcome of claiming a call for a media stream: ours, another stream's, or over. */
export type StreamClaim = 'claimed' | 'taken' | 'ended';

/** How long a stream token stays valid: Twilio opens the socket within seconds of reading the TwiML. */
export const STREAM_TOKEN_TTL_MS = 120_000;

/** Call records and the tokens that let one media stream attach to one call. */
export class CallsService {
  constructor(
    private readonly db: Db,
    private readonly events = new EventsService(db),
  ) {}

  /**
   * Creates the call row; it exists before any audio so that nothing about the call can be lost. The
   * `call.created` event is written in the same transaction.
   */
  async create(organizationId: string, input: NewCall): Promise<CallRow> {
    return this.db.transaction(async (tx) => {
      const row = await this.insert(tx, organizationId, input);
      await this.events.record(tx, {
        organizationId,
        type: 'call.created',
        subject: row.id,
        payload: { callId: row.id, direction: row.direction, agentId: row.agentId, from: row.fromNumber, to: row.toNumber, status: row.status, campaignId: row.campaignId, contactId: row.contactId },
      });
      return row;
    });
  }

  private async insert(tx: Tx, organizationId: string, input: NewCall): Promise<CallRow> {
    const [row] = await tx
      .insert(calls)
      .values({
        id: newId('call'),
        organizationId,
        agentId: input.agentId,
        direction: input.direction,
        fromNumber: input.fromNumber,
        toNumber: input.toNumber,
        providerCallSid: input.providerCallSid,
        variables: input.variables ?? {},
        phoneNumberId: input.phoneNumberId ?? null,
        idempotencyKey: input.idempotencyKey,
        status: input.status ?? 'queued',
        campaignId: input.campaignId,
        contactId: input.contactId,
        machineDetection: input.machineDetection ?? false,
      })
      .returning();
    return row!;
  }

  /** One call of the organization, or 404. */
  async get(organizationId: string, id: string): Promise<CallRow> {
    const [row] = await this.db.select().from(calls).where(and(eq(calls.id, id), eq(calls.organizationId, organizationId)));
    if (!row) throw notFound('call', id);
    return row;
  }

  /** A call by id in any organization (webhooks, whose URL names the call), or null. */
  async find(id: string): Promise<CallRow | null> {
    const [row] = await this.db.select().from(calls).where(eq(calls.id, id));
    return row ?? null;
  }

  /** Sets the carrier's id on a call that has none yet (an outbound call whose webhook came first). */
  async attachProviderSid(callId: string, providerCallSid: string): Promise<void> {
    await this.db.update(calls).set({ providerCallSid, updatedAt: sql`now()` }).where(and(eq(calls.id, callId), isNull(calls.providerCallSid)));
  }

  /** The call a carrier call id belongs to (webhooks), or null. */
  async byProviderSid(providerCallSid: string): Promise<CallRow | null> {
    const [row] = await this.db.select().from(calls).where(eq(calls.providerCallSid, providerCallSid));
    return row ?? null;
  }

  /** The call placed earlier with this `Idempotency-Key`, or null. */
  async byIdempotencyKey(organizationId: string, key: string): Promise<CallRow | null> {
    const [row] = await this.db.select().from(calls).where(and(eq(calls.organizationId, organizationId), eq(calls.idempotencyKey, key)));
    return row ?? null;
  }

  /** Records the carrier's id and status once the carrier accepted an outbound call. */
  async placed(callId: string, providerCallSid: string, status: CallStatus): Promise<CallRow> {
    const [row] = await this.db
      .update(calls)
      // Callbacks may have moved the call on (or attached this very sid) while the carrier's answer was on its way.
      .set({ providerCallSid, status: sql`case when ${calls.status} = 'queued' then ${status} else ${calls.status} end`, updatedAt: sql`now()` })
      .where(eq(calls.id, callId))
      .returning();
    return row!;
  }

  /** Links the stored recording to the call, with `call.recording.ready` in the same transaction. */
  async setRecording(callId: string, key: string, bytes: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      const [row] = await tx
        .update(calls)
        .set({ recordingKey: key, recordingBytes: bytes, updatedAt: sql`now()` })
        .where(and(eq(calls.id, callId), isNull(calls.deletedAt)))
        .returning({ id: calls.id, organizationId: calls.organizationId });
      if (row) await this.events.record(tx, { organizationId: row.organizationId, type: 'call.recording.ready', subject: row.id, payload: { callId: row.id, bytes } });
    });
  }

  /** Where the transfer tool sent the call. */
  async recordTransfer(callId: string, transfer: { to: string; summary?: string }): Promise<void> {
    await this.db.update(calls).set({ transfer, updatedAt: sql`now()` }).where(eq(calls.id, callId));
  }

  /** The organization's calls, newest first, filtered; deleted calls are left out. */
  async list(organizationId: string, f: CallFilters): Promise<CallRow[]> {
    return this.db
      .select()
      .from(calls)
      .where(
        and(
          eq(calls.organizationId, organizationId),
          isNull(calls.deletedAt),
          f.beforeId ? lt(calls.id, f.beforeId) : undefined,
          f.status ? eq(calls.status, f.status) : undefined,
          f.direction ? eq(calls.direction, f.direction) : undefined,
          f.agentId ? eq(calls.agentId, f.agentId) : undefined,
          f.campaignId ? eq(calls.campaignId, f.campaignId) : undefined,
          f.phoneNumberId ? eq(calls.phoneNumberId, f.phoneNumberId) : undefined,
          f.createdAfter ? gte(calls.createdAt, f.createdAfter) : undefined,
          f.createdBefore ? lt(calls.createdAt, f.createdBefore) : undefined,
        ),
      )
      .orderBy(desc(calls.id))
      .limit(f.limit);
  }

  /**
   * Deletes what a call said (transcript rows) and marks the call deleted; the row itself stays as a
   * tombstone for billing. Returns the recording key the caller must remove, if any.
   */
  async softDelete(organizationId: string, id: string): Promise<{ recordingKey: string | null }> {
    const call = await this.get(organizationId, id);
    if (call.deletedAt) throw notFound('call', id);
    await this.db.delete(callTurns).where(eq(callTurns.callId, call.id));
    await this.db.update(calls).set({ deletedAt: sql`now()`, recordingKey: null, recordingBytes: null, variables: {}, transfer: null, updatedAt: sql`now()` }).where(eq(calls.id, call.id));
    return { recordingKey: call.recordingKey };
  }

  /** Issues the single-use token the TwiML `<Parameter name="token">` carries to the media socket. */
  async issueStreamToken(call: Pick<CallRow, 'id' | 'organizationId'>, ttlMs = STREAM_TOKEN_TTL_MS): Promise<string> {
    const token = randomToken(32);
    await this.db.insert(streamTokens).values({ tokenHash: sha256(token), callId: call.id, organizationId: call.organizationId, expiresAt: new Date(Date.now() + ttlMs) });
    return token;
  }

  /** Spends a token: one conditional UPDATE, so of two sockets presenting it, exactly one wins. */
  async consumeStreamToken(token: string | undefined): Promise<{ ok: true; callId: string; organizationId: string } | { ok: false; reason: TokenRejection }> {
    if (!token) return { ok: false, reason: 'missing' };
    if (token.length > 200) return { ok: false, reason: 'unknown' };
    const hash = sha256(token);
    const [won] = await this.db
      .update(streamTokens)
      .set({ usedAt: sql`now()` })
      .where(and(eq(streamTokens.tokenHash, hash), isNull(streamTokens.usedAt), gt(streamTokens.expiresAt, sql`now()`)))
      .returning({ callId: streamTokens.callId, organizationId: streamTokens.organizationId });
    if (won) return { ok: true, ...won };
    const [row] = await this.db.select().from(streamTokens).where(eq(streamTokens.tokenHash, hash));
    return { ok: false, reason: !row ? 'unknown' : row.usedAt ? 'reused' : 'expired' };
  }

  /** Deletes spent and expired tokens; returns how many. */
  async purgeStreamTokens(): Promise<number> {
    const gone = await this.db.delete(streamTokens).where(sql`${streamTokens.expiresAt} < now() - interval '1 hour'`).returning({ h: streamTokens.tokenHash });
    return gone.length;
  }
}
