import type { Consumer, JobQueue } from '../queue/queue.js';

/** The queue housekeeping jobs run on. */
export const MAINTENANCE_QUEUE = 'maintenance';
const PURGE_EXPIRED = 'purge-expired';
const HOUR = 3_600_000;

/** Something that deletes its own expired rows and says how many. */
export interface Purger {
  name: string;
  purge(): Promise<number>;
}

/**
 * Schedules the next hourly purge. The job id names the hour, so any number of `serve` and `worker`
 * processes scheduling it still add one job per hour.
 */
export async function schedulePurge(queue: JobQueue, now = Date.now()): Promise<void> {
  const next = Math.floor(now / HOUR) * HOUR + HOUR;
  await queue.add(MAINTENANCE_QUEUE, PURGE_EXPIRED, {}, { jobId: `purge-expired-${next}`, delayMs: next - now, attempts: 3, backoff: { type: 'exponential', delayMs: 10_000 } });
}

/** Consumes maintenance jobs: each purge runs every purger, then schedules the next purge. */
export function consumeMaintenance(queue: JobQueue, purgers: Purger[], log: (msg: string) => void): Consumer {
  return queue.consume(MAINTENANCE_QUEUE, async (job) => {
    if (job.name !== PURGE_EXPIRED) return;
    for (const p of purgers) {
      const purged = await p.purge();
      if (purged > 0) log(`purged ${purged} expired ${p.name}`);
    }
    await schedulePurge(queue);
  });
}
