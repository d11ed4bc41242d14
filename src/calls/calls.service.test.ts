import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../../test/helpers/database.js';
import type { Database } from '../db/client.js';
import { cliServices } from '../cli/services.js';
import { bootstrapOrganization } from '../organizations/bootstrap.js';
import { CallsService } from './calls.service.js';
import { events } from '../events/events.table.js';
import { eq } from 'drizzle-orm';

describe('CallsService', () => {
  let database: Database;
  let calls: CallsService;
  let orgId: string;

  beforeAll(async () => {
    database = await freshDatabase();
    calls = new CallsService(database.db);
    orgId = (await bootstrapOrganization(cliServices(database.db), { organizationName: 'Calls', email: 'calls@example.test', password: 'a-long-password' })).organization.id;
  });
  afterAll(() => database.close());

  const newCall = () => calls.create(orgId, { agentId: null, direction: 'inbound', fromNumber: '+15550001111', toNumber: '+15550002222' });

  it('lets a fresh token attach its call once', async () => {
    const call = await newCall();
    const token = await calls.issueStreamToken(call);
    expect(await calls.consumeStreamToken(token)).toEqual({ ok: true, callId: call.id, organizationId: orgId });
  });

  it('refuses a token the second time', async () => {
    const token = await calls.issueStreamToken(await newCall());
    await calls.consumeStreamToken(token);
    expect(await calls.consumeStreamToken(token)).toEqual({ ok: false, reason: 'reused' });
  });

  it('lets only one of two simultaneous sockets win a token', async () => {
    const token = await calls.issueStreamToken(await newCall());
    const results = await Promise.all([calls.consumeStreamToken(token), calls.consumeStreamToken(token), calls.consumeStreamToken(token)]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
  });

  it('refuses an expired token', async () => {
    const token = await calls.issueStreamToken(await newCall(), -1);
    expect(await calls.consumeStreamToken(token)).toEqual({ ok: false, reason: 'expired' });
  });

  it('refuses a forged or missing token', async () => {
    expect(await calls.consumeStreamToken('forged')).toEqual({ ok: false, reason: 'unknown' });
    expect(await calls.consumeStreamToken(undefined)).toEqual({ ok: false, reason: 'missing' });
  });

  const eventsOf = (callId: string) => database.db.select().from(events).where(eq(events.subject, callId)).orderBy(events.id);

  it('writes call.created with the call, in the same transaction', async () => {
    const call = await calls.create(orgId, { agentId: null, direction: 'outbound', fromNumber: '+15550001111', toNumber: '+15550003333', idempotencyKey: 'once', campaignId: 'cmp_1', contactId: 'con_1' });
    expect(await eventsOf(call.id)).toEqual([
      expect.objectContaining({
        organizationId: orgId,
        type: 'call.created',
        payload: { callId: call.id, direction: 'outbound', agentId: null, from: '+15550001111', to: '+15550003333', status: 'queued', campaignId: 'cmp_1', contactId: 'con_1' },
      }),
    ]);
    // A create that fails (the same Idempotency-Key again) leaves no event behind.
    const before = (await database.db.select().from(events)).length;
    await expect(calls.create(orgId, { agentId: null, direction: 'outbound', idempotencyKey: 'once' })).rejects.toThrow();
    expect(await database.db.select().from(events)).toHaveLength(before);
  });
});
