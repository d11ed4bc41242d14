import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { freshDatabase } from '../../test/helpers/database.js';
import type { Database } from '../db/client.js';
import { InProcessJobQueue } from '../queue/in-process-queue.js';
import { CallsService } from '../calls/calls.service.js';
import { streamTokens } from '../calls/calls.table.js';
import { cliServices } from '../cli/services.js';
import { bootstrapOrganization } from '../organizations/bootstrap.js';
import { MAINTENANCE_QUEUE, consumeMaintenance } from './jobs.js';

describe('maintenance jobs', () => {
  let database: Database;
  let queue: InProcessJobQueue;
  beforeAll(async () => {
    database = await freshDatabase();
    queue = new InProcessJobQueue();
  });
  afterAll(async () => {
    await queue.close();
    await database.close();
  });

  it('purges long-expired stream tokens and schedules the next purge', async () => {
    const calls = new CallsService(database.db);
    const org = await bootstrapOrganization(cliServices(database.db), { organizationName: 'Purge', email: 'purge@example.test', password: 'a-long-password' });
    const call = await calls.create(org.organization.id, { agentId: null, direction: 'inbound' });
    await calls.issueStreamToken(call, -2 * 3_600_000);
    const fresh = await calls.issueStreamToken(call);
    const logs: string[] = [];
    const consumer = consumeMaintenance(queue, [{ name: 'stream tokens', purge: () => calls.purgeStreamTokens() }], (m) => logs.push(m));
    await queue.add(MAINTENANCE_QUEUE, 'purge-expired', {});
    const deadline = Date.now() + 5000;
    while ((await queue.counts(MAINTENANCE_QUEUE)).completed < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await database.db.select().from(streamTokens).where(eq(streamTokens.callId, call.id))).toHaveLength(1);
    expect(logs).toEqual(['purged 1 expired stream tokens']);
    expect((await queue.counts(MAINTENANCE_QUEUE)).delayed).toBe(1);
    expect((await calls.consumeStreamToken(fresh)).ok).toBe(true);
    await consumer.close();
  });
});
