import { hostname } from 'node:os';
import { and, eq, ne, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { newId } from '../../shared/ids.js';
import { serveNodes } from './serve-nodes.table.js';

/**
 * This process's lease in `serve_nodes`: registered on start, renewed every heartbeat, removed on a clean
 * stop. Calls record the node holding their media; when a node stops renewing (it was killed), the sweep on
 * any node ends those calls.
 */
export class NodeLease {
  /** This process's node id, stamped on the calls whose media it holds. */
  readonly id = newId('node');
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Db,
    private readonly heartbeatMs: number,
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  /** Whether no other node can share the database (see `start`). */
  exclusive = false;

  /**
   * Registers the node and starts the heartbeat. `exclusive`: no other node can be alive (the embedded
   * database is locked to this process), so every other lease is stale now, not after it runs out, and
   * nobody needs our heartbeat (each write would block the embedded database's event loop for nothing).
   */
  async start(opts: { exclusive?: boolean } = {}): Promise<void> {
    this.exclusive = opts.exclusive === true;
    if (this.exclusive) await this.db.delete(serveNodes).where(ne(serveNodes.id, this.id));
    await this.db.insert(serveNodes).values({ id: this.id, hostname: hostname(), pid: process.pid }).onConflictDoNothing();
    if (this.exclusive) return;
    this.timer = setInterval(() => void this.renew().catch((err: unknown) => this.onError(err as Error)), this.heartbeatMs);
    this.timer.unref();
  }

  /** Renews the lease (and re-registers it if an over-eager sweep removed it). */
  async renew(): Promise<void> {
    const renewed = await this.db.update(serveNodes).set({ heartbeatAt: sql`now()` }).where(eq(serveNodes.id, this.id)).returning({ id: serveNodes.id });
    if (renewed.length === 0) await this.db.insert(serveNodes).values({ id: this.id, hostname: hostname(), pid: process.pid }).onConflictDoNothing();
  }

  /** Stops the heartbeat and gives the lease up (a clean stop has ended its calls itself). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.db.delete(serveNodes).where(eq(serveNodes.id, this.id)).catch(() => {});
  }

  /** Deletes leases that ran out long ago, so the table holds live nodes and the recently dead. */
  async purgeStale(leaseMs: number): Promise<number> {
    const gone = await this.db
      .delete(serveNodes)
      .where(and(ne(serveNodes.id, this.id), sql`${serveNodes.heartbeatAt} < now() - ${10 * leaseMs} * interval '1 millisecond'`))
      .returning({ id: serveNodes.id });
    return gone.length;
  }
}
