import type { Consumer, JobQueue } from '../queue/queue.js';
import type { SessionsService } from './sessions.service.js';

/** The queue housekeeping jobs run on. */
export const MAINTENANCE_QUEUE = 'maintenance';
const PURGE_SESSIONS = 'purge-expired-sessions';
const HOUR = 3_600_000;

/**
 * Schedules the next hourly purge of expired sessions. The job id names the hour, so any number of
 * `serve` and `worker` processes scheduling it still add one job per hour.
 */
export async function schedulePurgeSessions(queue: JobQueue, now = Date.now()): Promise<void> {
  const next = Math.floor(now / HOUR) * HOUR + HOUR;
  await queue.add(MAINTENANCE_QUEUE, PURGE_SESSIONS, {}, { jobId: `purge-sessions-${next}`, delayMs: next - now, attempts: 3, backoff: { type: 'exponential', delayMs: 10_000 } });
}

/** Consumes maintenance jobs; each purge schedules the next one. */
export function consumeMaintenance(queue: JobQueue, sessions: SessionsService, log: (msg: string) => void): Consumer {
  return queue.consume(MAINTENANCE_QUEUE, async (job) => {
    if (job.name !== PURGE_SESSIONS) return;
    const purged = await sessions.purgeExpired();
    if (purged > 0) log(`purged ${purged} expired sessions`);
    await schedulePurgeSessions(queue);
  });
}
