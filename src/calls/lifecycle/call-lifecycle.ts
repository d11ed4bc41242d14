import { and, eq, isNull, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import { EventsService } from '../../events/events.service.js';
import { calls, callTurns, type AnsweredBy, type CallRow, type CallStatus, type EndReason } from '../calls.table.js';
import type { StreamClaim } from '../calls.service.js';
import { finalOutcome } from './final-outcome.js';

/** How long the lifecycle waits for what may never come. */
export interface LifecycleTimings {
  /** After the first end signal, how long to wait for the other (a lost carrier callback) before finalizing. */
  finalizeGraceMs: number;
  /** An outbound call with no carrier id this long after it was created was never placed, as far as we know. */
  placementDeadlineMs: number;
  /** A test call whose media socket has not come this long after it was created never will (its token expired). */
  testCallTtlMs: number;
}

/** A carrier status report about a call. */
export interface CarrierStatus {
  status: CallStatus;
  /** Billed seconds, on the final report. */
  durationSeconds?: number;
}

/** Which call a carrier callback is about: its carrier id and, when our callback URL carried it, our call id. */
export interface CarrierCallRef {
  providerCallSid: string;
  callId?: string;
}

const FINAL_CARRIER_STATUSES: ReadonlySet<CallStatus> = new Set<CallStatus>(['completed', 'busy', 'no_answer', 'failed', 'canceled']);
const RANK: Record<CallStatus, number> = { queued: 0, initiated: 1, ringing: 2, in_progress: 3, completed: 4, busy: 4, no_answer: 4, failed: 4, canceled: 4 };

// A call without a carrier leg (a test call) has no final status to wait for.
const hasCarrierLeg = (call: Pick<CallRow, 'direction' | 'phoneNumberId'>) => call.direction === 'outbound' || call.phoneNumberId !== null;

/**
 * The end of a call, exactly once. The media side and the carrier each report their end, in either order and
 * possibly twice; the call is finalized when both are in (or a grace period after the first), in a
 * transaction that holds the row lock and checks `finalized_at IS NULL`, so two nodes racing finalize once.
 * Finalization writes the final status, end reason, duration and answer time and the `call.ended` event.
 */
export class CallLifecycle {
  constructor(
    private readonly db: Db,
    private readonly timings: LifecycleTimings,
    private readonly events = new EventsService(db),
  ) {}

  /**
   * Records why the call is about to end (an API hangup, a transfer) before the carrier is asked, so the
   * stream `stop` the carrier sends back cannot take its place. Returns false when a cause was already there.
   */
  async recordCause(callId: string, reason: EndReason, detail?: string): Promise<boolean> {
    const set = await this.db
      .update(calls)
      .set({ endReason: reason, endDetail: detail?.slice(0, 500) ?? null, updatedAt: sql`now()` })
      .where(and(eq(calls.id, callId), isNull(calls.endReason), isNull(calls.finalizedAt)))
      .returning({ id: calls.id });
    return set.length > 0;
  }

  /** Takes back a cause the carrier refused to act on (the hangup or transfer failed): the call goes on. */
  async withdrawCause(callId: string, reason: EndReason): Promise<void> {
    await this.db
      .update(calls)
      .set({ endReason: null, endDetail: null, updatedAt: sql`now()` })
      .where(and(eq(calls.id, callId), eq(calls.endReason, reason), isNull(calls.endedAt), isNull(calls.finalizedAt)));
  }

  /** Our media side of the call closed (or will never open). Returns the call as it stands, final or not. */
  async mediaEnded(callId: string, reason: EndReason, detail?: string): Promise<CallRow | null> {
    return this.db.transaction(async (tx) => {
      const call = await this.lock(tx, callId);
      if (!call) return null;
      if (call.finalizedAt || call.mediaEndedAt) return call;
      // The carrier's final status came first: the caller or the network ended the call, and the stream's
      // stop or close that follows is its echo, not its cause (finalization then says carrier_completed).
      const echo = call.carrierFinalAt !== null && (reason === 'stream_stopped' || reason === 'socket_closed');
      const keep = call.endReason !== null || echo;
      const [row] = await tx
        .update(calls)
        .set({
          mediaEndedAt: sql`now()`,
          endedAt: sql`coalesce(${calls.endedAt}, now())`,
          endReason: keep ? call.endReason : reason,
          endDetail: keep ? call.endDetail : (detail?.slice(0, 500) ?? null),
          updatedAt: sql`now()`,
        })
        .where(eq(calls.id, callId))
        .returning();
      return this.finalizeIfReady(tx, row!, false);
    });
  }

  /**
   * Applies a carrier status callback idempotently: progress only moves forward, an answer is recorded once
   * (with `call.answered`), and a final status is kept until the call can be finalized. A callback whose
   * carrier id we never stored is matched by the call id its URL carries, and attaches that id. Returns the
   * call, or null when the callback matches none.
   */
  async carrierStatus(ref: CarrierCallRef, update: CarrierStatus): Promise<CallRow | null> {
    return this.db.transaction(async (tx) => {
      const call = await this.locate(tx, ref);
      if (!call) return null;
      if (call.finalizedAt) return call;
      const final = FINAL_CARRIER_STATUSES.has(update.status);
      const answersNow = update.status === 'in_progress' && !call.answeredAt && !call.endedAt;
      const [row] = await tx
        .update(calls)
        .set({
          status: !final && RANK[update.status] > RANK[call.status] ? update.status : undefined,
          answeredAt: answersNow ? sql`now()` : undefined,
          carrierStatus: final ? sql`coalesce(${calls.carrierStatus}, ${update.status})` : undefined,
          carrierFinalAt: final ? sql`coalesce(${calls.carrierFinalAt}, now())` : undefined,
          durationSeconds: final && update.durationSeconds !== undefined ? sql`coalesce(${calls.durationSeconds}, ${update.durationSeconds})` : undefined,
          endedAt: final ? sql`coalesce(${calls.endedAt}, now())` : undefined,
          updatedAt: sql`now()`,
        })
        .where(eq(calls.id, call.id))
        .returning();
      if (answersNow) await this.recordAnswered(tx, row!);
      return final ? this.finalizeIfReady(tx, row!, false) : row!;
    });
  }

  /** The carrier refused to place an outbound call: there is nothing to wait for. */
  async placementFailed(callId: string, reason: EndReason, detail: string): Promise<CallRow | null> {
    return this.db.transaction(async (tx) => {
      const call = await this.lock(tx, callId);
      if (!call || call.finalizedAt) return call;
      const [row] = await tx
        .update(calls)
        .set({ carrierStatus: 'failed', carrierFinalAt: sql`now()`, endedAt: sql`coalesce(${calls.endedAt}, now())`, endReason: call.endReason ?? reason, endDetail: detail.slice(0, 500), updatedAt: sql`now()` })
        .where(eq(calls.id, callId))
        .returning();
      return this.finalizeIfReady(tx, row!, true);
    });
  }

  /**
   * Claims the call for one media stream held by `nodeId` and marks it in progress and answered (a stream only
   * runs on an answered call): a conditional UPDATE on `stream_sid IS NULL`, so of two sockets (a replayed or
   * retried webhook, on any node) exactly one wins, and an ended call is never reopened. A call has at most
   * one media session in its life. `call.started` (and `call.answered` the first time) commit with the claim.
   */
  async claimMedia(callId: string, stream: { streamSid: string; providerCallSid: string }, nodeId: string): Promise<StreamClaim> {
    const won = await this.db.transaction(async (tx) => {
      const call = await this.lock(tx, callId);
      if (!call || call.streamSid !== null || call.endedAt !== null || call.finalizedAt !== null) return false;
      const [row] = await tx
        .update(calls)
        .set({
          status: 'in_progress',
          streamSid: stream.streamSid,
          mediaNodeId: nodeId,
          providerCallSid: call.providerCallSid ?? stream.providerCallSid,
          startedAt: sql`now()`,
          answeredAt: sql`coalesce(${calls.answeredAt}, now())`,
          updatedAt: sql`now()`,
        })
        .where(eq(calls.id, callId))
        .returning();
      await this.events.record(tx, {
        organizationId: row!.organizationId,
        type: 'call.started',
        subject: row!.id,
        payload: { callId: row!.id, startedAt: (row!.startedAt ?? new Date()).toISOString(), providerCallSid: row!.providerCallSid, streamSid: stream.streamSid },
      });
      if (!call.answeredAt) await this.recordAnswered(tx, row!);
      return true;
    });
    if (won) return 'claimed';
    const [row] = await this.db.select({ endedAt: calls.endedAt, finalizedAt: calls.finalizedAt }).from(calls).where(eq(calls.id, callId));
    return !row || row.endedAt || row.finalizedAt ? 'ended' : 'taken';
  }

  /** Records what answering-machine detection found (first result wins); matched like a status callback. */
  async recordAnsweredBy(ref: CarrierCallRef, answeredBy: AnsweredBy): Promise<CallRow | null> {
    return this.db.transaction(async (tx) => {
      const call = await this.locate(tx, ref);
      if (!call || call.answeredBy) return call;
      const [row] = await tx.update(calls).set({ answeredBy, updatedAt: sql`now()` }).where(eq(calls.id, call.id)).returning();
      return row!;
    });
  }

  /**
   * Finalizes a call whatever is missing (the grace period passed, its node died, it was never placed).
   * Returns the call, or null when it does not exist.
   */
  async forceFinalize(callId: string, end?: { reason: EndReason; detail?: string; mediaEnded?: boolean }): Promise<CallRow | null> {
    return this.db.transaction(async (tx) => {
      let call = await this.lock(tx, callId);
      if (!call || call.finalizedAt) return call;
      if (end) {
        const [ended] = await tx
          .update(calls)
          .set({
            mediaEndedAt: end.mediaEnded ? sql`coalesce(${calls.mediaEndedAt}, now())` : undefined,
            endedAt: sql`coalesce(${calls.endedAt}, now())`,
            endReason: call.endReason ?? end.reason,
            endDetail: call.endReason ? call.endDetail : (end.detail?.slice(0, 500) ?? null),
            updatedAt: sql`now()`,
          })
          .where(eq(calls.id, callId))
          .returning();
        call = ended!;
      }
      return this.finalizeIfReady(tx, call, true);
    });
  }

  /** The grace the lifecycle allows, for the sweep. */
  get graceMs(): number {
    return this.timings.finalizeGraceMs;
  }

  /** The timings, for the sweep. */
  get limits(): LifecycleTimings {
    return this.timings;
  }

  private async lock(tx: Tx, callId: string): Promise<CallRow | null> {
    const [row] = await tx.select().from(calls).where(eq(calls.id, callId)).for('update');
    return row ?? null;
  }

  // The call a callback is about: by carrier id, else by the call id in our URL when that call has no carrier
  // id yet (the callback beat the carrier's answer to our create request, or we crashed before storing it).
  private async locate(tx: Tx, ref: CarrierCallRef): Promise<CallRow | null> {
    const [bySid] = await tx.select().from(calls).where(eq(calls.providerCallSid, ref.providerCallSid)).for('update');
    if (bySid) return bySid;
    if (!ref.callId) return null;
    const call = await this.lock(tx, ref.callId);
    if (!call || call.direction !== 'outbound' || call.providerCallSid !== null) return null;
    const [attached] = await tx.update(calls).set({ providerCallSid: ref.providerCallSid, status: call.status === 'queued' ? 'initiated' : call.status, updatedAt: sql`now()` }).where(eq(calls.id, call.id)).returning();
    return attached!;
  }

  // Finalizes when both sides are in (or `force`): the one place status, end reason, duration and answer time
  // become final, and `call.ended` is written, in the transaction holding the row lock.
  private async finalizeIfReady(tx: Tx, call: CallRow, force: boolean): Promise<CallRow> {
    if (call.finalizedAt) return call;
    const mediaDone = call.mediaEndedAt !== null || call.streamSid === null;
    const carrierDone = call.carrierFinalAt !== null || !hasCarrierLeg(call);
    const anyEnd = call.endedAt !== null || call.mediaEndedAt !== null;
    if (!force && !(anyEnd && mediaDone && carrierDone)) return call;
    const [counted] = await tx
      .select({ turns: sql<number>`count(*)::int`, spoke: sql<number>`(count(*) filter (where ${callTurns.role} = 'assistant'))::int` })
      .from(callTurns)
      .where(eq(callTurns.callId, call.id));
    const outcome = finalOutcome({ ...call, agentSpoke: (counted?.spoke ?? 0) > 0 }, new Date());
    const [row] = await tx
      .update(calls)
      .set({ ...outcome, finalizedAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(calls.id, call.id), isNull(calls.finalizedAt)))
      .returning();
    if (!row) return call;
    await this.events.record(tx, {
      organizationId: row.organizationId,
      type: 'call.ended',
      subject: row.id,
      payload: {
        callId: row.id,
        status: row.status,
        endReason: outcome.endReason,
        endDetail: row.endDetail,
        endedAt: outcome.endedAt.toISOString(),
        answeredAt: outcome.answeredAt?.toISOString() ?? null,
        durationSeconds: outcome.durationSeconds,
      },
    });
    if ((counted?.turns ?? 0) > 0) {
      await this.events.record(tx, { organizationId: row.organizationId, type: 'call.transcript.ready', subject: row.id, payload: { callId: row.id, turns: counted!.turns } });
    }
    return row;
  }

  private async recordAnswered(tx: Tx, call: CallRow): Promise<void> {
    await this.events.record(tx, {
      organizationId: call.organizationId,
      type: 'call.answered',
      subject: call.id,
      payload: { callId: call.id, answeredAt: (call.answeredAt ?? new Date()).toISOString(), answeredBy: call.answeredBy },
    });
  }
}
