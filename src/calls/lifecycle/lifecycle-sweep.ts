import { and, eq, isNull, isNotNull, lt, notInArray, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { calls, type CallRow, type CallStatus } from '../calls.table.js';
import { serveNodes } from './serve-nodes.table.js';
import type { CallLifecycle } from './call-lifecycle.js';

/** A carrier call found by looking it up (an outbound call whose carrier id we never stored). */
export interface FoundCarrierCall {
  providerCallSid: string;
  status: CallStatus;
  durationSeconds?: number;
}

/** Asks the carrier about a call we placed but whose carrier id we lost; null when it has none or cannot tell. */
export type CarrierLookup = (call: Pick<CallRow, 'id' | 'fromNumber' | 'toNumber' | 'createdAt'>) => Promise<FoundCarrierCall | null>;

/** What one sweep did, by kind. */
export interface SweepResult {
  crashed: number;
  graceExpired: number;
  testCallsExpired: number;
  placementsUnknown: number;
  placementsFound: number;
}

// A sweep finalizes at most this many calls of each kind; the next sweep takes the rest.
const BATCH = 200;

/**
 * Finds the calls whose end will never be reported and finalizes them: calls held by a node that died,
 * calls whose other end signal did not come within the grace period, test calls nobody connected to, and
 * outbound calls whose placement we cannot confirm. Safe to run on every node at once: each finalization is
 * guarded by the lifecycle.
 */
export class LifecycleSweep {
  constructor(
    private readonly deps: {
      db: Db;
      lifecycle: CallLifecycle;
      nodeLeaseMs: number;
      /** How long a test call's stream token lives. */
      testCallTtlMs: number;
      carrierLookup?: CarrierLookup;
      log?: (msg: string, err?: unknown) => void;
    },
  ) {}

  /** One pass over every kind. */
  async run(): Promise<SweepResult> {
    const result: SweepResult = { crashed: 0, graceExpired: 0, testCallsExpired: 0, placementsUnknown: 0, placementsFound: 0 };
    result.crashed = await this.endCrashed();
    result.graceExpired = await this.finalizeAfterGrace();
    result.testCallsExpired = await this.expireTestCalls();
    await this.resolvePlacements(result);
    const total = result.crashed + result.graceExpired + result.testCallsExpired + result.placementsUnknown + result.placementsFound;
    if (total > 0) this.deps.log?.(`call sweep: ${JSON.stringify(result)}`);
    return result;
  }

  // Live media on a node whose lease ran out: the process holding the call is gone, and so is the call.
  private async endCrashed(): Promise<number> {
    const { db, lifecycle, nodeLeaseMs } = this.deps;
    const live = db.select({ id: serveNodes.id }).from(serveNodes).where(sql`${serveNodes.heartbeatAt} > now() - ${nodeLeaseMs} * interval '1 millisecond'`);
    const orphans = await db
      .select({ id: calls.id })
      .from(calls)
      .where(and(isNull(calls.finalizedAt), isNotNull(calls.streamSid), isNull(calls.mediaEndedAt), notInArray(sql`coalesce(${calls.mediaNodeId}, '')`, live)))
      .limit(BATCH);
    for (const { id } of orphans) await lifecycle.forceFinalize(id, { reason: 'server_crashed', detail: 'the server holding the call stopped without ending it', mediaEnded: true });
    return orphans.length;
  }

  // One end signal came and the other did not within the grace period (typically a lost carrier callback).
  private async finalizeAfterGrace(): Promise<number> {
    const { db, lifecycle } = this.deps;
    const due = await db
      .select({ id: calls.id })
      .from(calls)
      .where(and(isNull(calls.finalizedAt), lt(calls.endedAt, sql`now() - ${lifecycle.graceMs} * interval '1 millisecond'`)))
      .limit(BATCH);
    for (const { id } of due) await lifecycle.forceFinalize(id);
    return due.length;
  }

  // A test call's token expired with no socket: nobody will ever connect to it.
  private async expireTestCalls(): Promise<number> {
    const { db, lifecycle, testCallTtlMs } = this.deps;
    const expired = await db
      .select({ id: calls.id })
      .from(calls)
      .where(and(isNull(calls.finalizedAt), eq(calls.direction, 'inbound'), isNull(calls.phoneNumberId), isNull(calls.streamSid), lt(calls.createdAt, sql`now() - ${testCallTtlMs} * interval '1 millisecond'`)))
      .limit(BATCH);
    for (const { id } of expired) await lifecycle.forceFinalize(id, { reason: 'not_answered', detail: 'no media stream connected before the stream token expired' });
    return expired.length;
  }

  // Outbound calls with no carrier id past the deadline: the process died between asking the carrier and
  // storing its answer (or the carrier never answered). Ask the carrier first; give up only when it cannot tell.
  private async resolvePlacements(result: SweepResult): Promise<void> {
    const { db, lifecycle } = this.deps;
    const unknown = await db
      .select()
      .from(calls)
      .where(and(isNull(calls.finalizedAt), eq(calls.direction, 'outbound'), isNull(calls.providerCallSid), lt(calls.createdAt, sql`now() - ${lifecycle.limits.placementDeadlineMs} * interval '1 millisecond'`)))
      .limit(BATCH);
    for (const call of unknown) {
      const found = await this.lookUp(call);
      if (found) {
        await lifecycle.carrierStatus({ providerCallSid: found.providerCallSid, callId: call.id }, { status: found.status, durationSeconds: found.durationSeconds });
        result.placementsFound++;
      } else {
        await lifecycle.forceFinalize(call.id, { reason: 'placement_unknown', detail: 'no carrier call id was stored for this call' });
        result.placementsUnknown++;
      }
    }
  }

  private async lookUp(call: CallRow): Promise<FoundCarrierCall | null> {
    if (!this.deps.carrierLookup) return null;
    try {
      return await this.deps.carrierLookup(call);
    } catch (err) {
      this.deps.log?.(`carrier lookup of ${call.id} failed`, err);
      return null;
    }
  }
}
