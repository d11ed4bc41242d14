import { and, eq, isNull, isNotNull, lt, notInArray, or, sql } from 'drizzle-orm';
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

// A sweep finalizes at most this many calls; the next sweep takes the rest.
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
      /** This node, when it is the only one that can exist (embedded database): every other node is gone. */
      exclusiveNode?: () => string | null;
      /** How long a test call's stream token lives. */
      testCallTtlMs: number;
      carrierLookup?: CarrierLookup;
      log?: (msg: string, err?: unknown) => void;
    },
  ) {}

  /**
   * One pass over every kind. One query finds them all: on the embedded database every query blocks the
   * event loop that carries live audio (about 1 ms each, whatever it does), so the sweep asks once.
   */
  async run(): Promise<SweepResult> {
    const result: SweepResult = { crashed: 0, graceExpired: 0, testCallsExpired: 0, placementsUnknown: 0, placementsFound: 0 };
    const { lifecycle } = this.deps;
    for (const { call, kind } of await this.due()) {
      switch (kind) {
        case 'crashed':
          await lifecycle.forceFinalize(call.id, { reason: 'server_crashed', detail: 'the server holding the call stopped without ending it', mediaEnded: true });
          result.crashed++;
          break;
        case 'grace':
          await lifecycle.forceFinalize(call.id);
          result.graceExpired++;
          break;
        case 'test_call':
          await lifecycle.forceFinalize(call.id, { reason: 'not_answered', detail: 'no media stream connected before the stream token expired' });
          result.testCallsExpired++;
          break;
        case 'placement':
          await this.resolvePlacement(call, result);
          break;
      }
    }
    const total = result.crashed + result.graceExpired + result.testCallsExpired + result.placementsUnknown + result.placementsFound;
    if (total > 0) this.deps.log?.(`call sweep: ${JSON.stringify(result)}`);
    return result;
  }

  // The calls whose end nobody will report, each with the first reason that applies:
  // - crashed: live media on a node whose lease ran out (the process holding the call is gone);
  // - grace: one end signal came and the other did not within the grace period (a lost carrier callback);
  // - test_call: a test call's token expired with no socket: nobody will ever connect to it;
  // - placement: an outbound call with no carrier id past the deadline (the process died between asking the
  //   carrier and storing its answer, or the carrier never answered).
  private async due(): Promise<Array<{ call: CallRow; kind: 'crashed' | 'grace' | 'test_call' | 'placement' }>> {
    const { db, lifecycle, nodeLeaseMs, testCallTtlMs } = this.deps;
    const ago = (ms: number) => sql`now() - ${ms} * interval '1 millisecond'`;
    const only = this.deps.exclusiveNode?.() ?? null;
    const live = db.select({ id: serveNodes.id }).from(serveNodes).where(sql`${serveNodes.heartbeatAt} > ${ago(nodeLeaseMs)}`);
    const gone = only ? sql`coalesce(${calls.mediaNodeId}, '') <> ${only}` : notInArray(sql`coalesce(${calls.mediaNodeId}, '')`, live);
    const crashed = and(isNotNull(calls.streamSid), isNull(calls.mediaEndedAt), gone)!;
    const grace = lt(calls.endedAt, ago(lifecycle.graceMs))!;
    const testCall = and(eq(calls.direction, 'inbound'), isNull(calls.phoneNumberId), isNull(calls.streamSid), lt(calls.createdAt, ago(testCallTtlMs)))!;
    const placement = and(eq(calls.direction, 'outbound'), isNull(calls.providerCallSid), lt(calls.createdAt, ago(lifecycle.limits.placementDeadlineMs)))!;
    const rows = await db
      .select({
        call: calls,
        kind: sql<'crashed' | 'grace' | 'test_call' | 'placement'>`case when ${crashed} then 'crashed' when ${grace} then 'grace' when ${testCall} then 'test_call' else 'placement' end`,
      })
      .from(calls)
      .where(and(isNull(calls.finalizedAt), or(crashed, grace, testCall, placement)))
      .limit(BATCH);
    return rows;
  }

  // Asks the carrier first; gives up only when it cannot tell.
  private async resolvePlacement(call: CallRow, result: SweepResult): Promise<void> {
    const { lifecycle } = this.deps;
    const found = await this.lookUp(call);
    if (found) {
      await lifecycle.carrierStatus({ providerCallSid: found.providerCallSid, callId: call.id }, { status: found.status, durationSeconds: found.durationSeconds });
      result.placementsFound++;
    } else {
      await lifecycle.forceFinalize(call.id, { reason: 'placement_unknown', detail: 'no carrier call id was stored for this call' });
      result.placementsUnknown++;
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
