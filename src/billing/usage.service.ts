import { and, asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { newId } from '../shared/ids.js';
import { usageRecords, type UsageMeter, type UsageRecordRow } from './usage.table.js';

/** One increment of usage. */
export interface UsageItem {
  meter: UsageMeter;
  provider: string;
  model?: string;
  quantity: number;
}

/** Records metered usage per call for billing. */
export class UsageService {
  constructor(private readonly db: Db) {}

  /** Adds `items` to the call's running totals: one upsert statement however many meters changed. */
  async add(organizationId: string, callId: string, items: UsageItem[]): Promise<void> {
    // One row per (meter, provider, model): the same key twice in one statement is a Postgres error.
    const merged = new Map<string, UsageItem>();
    for (const item of items) {
      if (!(item.quantity > 0)) continue;
      const key = `${item.meter}\u0000${item.provider}\u0000${item.model ?? ''}`;
      merged.set(key, { ...item, quantity: (merged.get(key)?.quantity ?? 0) + item.quantity });
    }
    const rows = [...merged.values()].map((item) => ({ id: newId('use'), organizationId, callId, meter: item.meter, provider: item.provider, model: item.model ?? '', quantity: item.quantity }));
    if (rows.length === 0) return;
    await this.db
      .insert(usageRecords)
      .values(rows)
      .onConflictDoUpdate({
        target: [usageRecords.callId, usageRecords.meter, usageRecords.provider, usageRecords.model],
        set: { quantity: sql`${usageRecords.quantity} + excluded.quantity`, updatedAt: sql`now()` },
      });
  }

  /** The call's usage rows, for the calls API and tests. */
  async forCall(organizationId: string, callId: string): Promise<UsageRecordRow[]> {
    return this.db
      .select()
      .from(usageRecords)
      .where(and(eq(usageRecords.organizationId, organizationId), eq(usageRecords.callId, callId)))
      .orderBy(asc(usageRecords.meter), asc(usageRecords.provider), asc(usageRecords.model));
  }
}

/**
 * Accumulates one call's usage in memory and writes the increments on `flush()`; the conversation
 * flushes after every turn and at the end, so a crash loses at most one turn's usage.
 */
export class UsageMeterBuffer {
  private readonly pending = new Map<string, UsageItem>();

  constructor(
    private readonly usage: UsageService,
    private readonly organizationId: string,
    private readonly callId: string,
  ) {}

  /** Adds to the in-memory increment. */
  add(item: UsageItem): void {
    const key = `${item.meter}\u0000${item.provider}\u0000${item.model ?? ''}`;
    const prev = this.pending.get(key);
    this.pending.set(key, { ...item, quantity: (prev?.quantity ?? 0) + item.quantity });
  }

  /** Writes and forgets the pending increments. */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const items = [...this.pending.values()];
    this.pending.clear();
    await this.usage.add(this.organizationId, this.callId, items);
  }
}
