import { and, eq, gt, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { newId, randomToken } from '../shared/ids.js';
import { notFound } from '../shared/errors.js';
import { sha256 } from '../auth/api-keys.service.js';
import { calls, streamTokens, type CallRow, type EndReason } from './calls.table.js';

/** What is known about a call before its media arrives. */
export interface NewCall {
  agentId: string | null;
  direction: 'inbound' | 'outbound';
  fromNumber?: string;
  toNumber?: string;
  providerCallSid?: string;
  /** Values for the agent's `{{variables}}` on this call. */
  variables?: Record<string, string>;
}

/** Why a stream token was refused; logged, never told to the peer. */
export type TokenRejection = 'missing' | 'unknown' | 'expired' | 'reused';

/** How long a stream token stays valid: Twilio opens the socket within seconds of reading the TwiML. */
export const STREAM_TOKEN_TTL_MS = 120_000;

/** Call records and the tokens that let one media stream attach to one call. */
export class CallsService {
  constructor(private readonly db: Db) {}

  /** Creates the call row; it exists before any audio so that nothing about the call can be lost. */
  async create(organizationId: string, input: NewCall): Promise<CallRow> {
    const [row] = await this.db
      .insert(calls)
      .values({ id: newId('call'), organizationId, agentId: input.agentId, direction: input.direction, fromNumber: input.fromNumber, toNumber: input.toNumber, providerCallSid: input.providerCallSid, variables: input.variables ?? {} })
      .returning();
    return row!;
  }

  /** One call of the organization, or 404. */
  async get(organizationId: string, id: string): Promise<CallRow> {
    const [row] = await this.db.select().from(calls).where(and(eq(calls.id, id), eq(calls.organizationId, organizationId)));
    if (!row) throw notFound('call', id);
    return row;
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

  /** Marks the media stream as started; keeps the first start time if called again. */
  async markStarted(callId: string, stream: { streamSid: string; providerCallSid: string }): Promise<void> {
    await this.db
      .update(calls)
      .set({
        status: 'in_progress',
        streamSid: stream.streamSid,
        providerCallSid: sql`coalesce(${calls.providerCallSid}, ${stream.providerCallSid})`,
        startedAt: sql`coalesce(${calls.startedAt}, now())`,
        updatedAt: sql`now()`,
      })
      .where(and(eq(calls.id, callId), isNull(calls.endedAt)));
  }

  /** Closes a call once: the first reason wins, later closes change nothing. Returns whether this call closed it. */
  async close(callId: string, reason: EndReason, detail?: string): Promise<boolean> {
    const closed = await this.db
      .update(calls)
      .set({
        endedAt: sql`now()`,
        endReason: reason,
        endDetail: detail?.slice(0, 500) ?? null,
        status: sql`case when ${calls.status} in ('in_progress', 'ringing', 'initiated', 'queued') then 'completed' else ${calls.status} end`,
        updatedAt: sql`now()`,
      })
      .where(and(eq(calls.id, callId), isNull(calls.endedAt)))
      .returning({ id: calls.id });
    return closed.length > 0;
  }

  /** Deletes spent and expired tokens; returns how many. */
  async purgeStreamTokens(): Promise<number> {
    const gone = await this.db.delete(streamTokens).where(sql`${streamTokens.expiresAt} < now() - interval '1 hour'`).returning({ h: streamTokens.tokenHash });
    return gone.length;
  }
}
