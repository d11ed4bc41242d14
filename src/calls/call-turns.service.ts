import { and, asc, eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { newId } from '../shared/ids.js';
import type { TURN_ROLES } from './calls.table.js';
import { callTurns, type CallTurnRow, type TurnLatency } from './calls.table.js';

/** A turn as the conversation first records it. */
export interface NewTurn {
  organizationId: string;
  callId: string;
  seq: number;
  role: (typeof TURN_ROLES)[number];
  kind: string;
  text: string;
  startedAt: Date;
  endedAt?: Date;
  latency?: TurnLatency;
  detail?: Record<string, unknown>;
}

/** What changes when a turn ends (or is cut short by barge-in). */
export interface TurnUpdate {
  text?: string;
  interrupted?: boolean;
  endedAt?: Date;
  latency?: TurnLatency;
  detail?: Record<string, unknown>;
}

/** The transcript of calls, written turn by turn while they happen. */
export class CallTurnsService {
  constructor(private readonly db: Db) {}

  /** Records a turn; returns its id. */
  async add(turn: NewTurn): Promise<string> {
    const id = newId('turn');
    await this.db.insert(callTurns).values({ id, ...turn, interrupted: false });
    return id;
  }

  /** Updates a turn (its text, interruption, end time, latencies). */
  async update(id: string, patch: TurnUpdate): Promise<void> {
    await this.db.update(callTurns).set(patch).where(eq(callTurns.id, id));
  }

  /** The call's turns in order. */
  async list(organizationId: string, callId: string): Promise<CallTurnRow[]> {
    return this.db
      .select()
      .from(callTurns)
      .where(and(eq(callTurns.organizationId, organizationId), eq(callTurns.callId, callId)))
      .orderBy(asc(callTurns.seq));
  }
}
