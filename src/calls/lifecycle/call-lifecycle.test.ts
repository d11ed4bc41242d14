import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, sql } from 'drizzle-orm';
import { freshDatabase } from '../../../test/helpers/database.js';
import type { Database } from '../../db/client.js';
import { cliServices } from '../../cli/services.js';
import { bootstrapOrganization } from '../../organizations/bootstrap.js';
import { CallsService, type NewCall } from '../calls.service.js';
import { events } from '../../events/events.table.js';
import { CallLifecycle } from './call-lifecycle.js';
import { LifecycleSweep } from './lifecycle-sweep.js';
import { NodeLease } from './node-lease.js';
import { serveNodes } from './serve-nodes.table.js';

describe('CallLifecycle', () => {
  let database: Database;
  let calls: CallsService;
  let lifecycle: CallLifecycle;
  let orgId: string;
  const NODE = 'node_test';

  beforeAll(async () => {
    database = await freshDatabase();
    calls = new CallsService(database.db);
    lifecycle = new CallLifecycle(database.db, { finalizeGraceMs: 60_000, placementDeadlineMs: 60_000, testCallTtlMs: 60_000 });
    orgId = (await bootstrapOrganization(cliServices(database.db), { organizationName: 'Lifecycle', email: 'life@example.test', password: 'a-long-password' })).organization.id;
  });
  afterAll(() => database.close());

  let sidSeq = 0;
  const sid = () => `CA${String(++sidSeq).padStart(32, '0')}`;
  const testCall = () => calls.create(orgId, { agentId: null, direction: 'inbound', fromNumber: 'simulator', toNumber: 'simulator' });
  const outbound = (extra: Partial<NewCall> = {}) => calls.create(orgId, { agentId: null, direction: 'outbound', fromNumber: '+15550001111', toNumber: '+15550003333', ...extra });
  const eventsOf = async (callId: string) => (await database.db.select().from(events).where(eq(events.subject, callId)).orderBy(events.id)).map((e) => e.type);
  const ended = async (callId: string) => (await eventsOf(callId)).filter((t) => t === 'call.ended').length;
  const backdate = (callId: string, column: 'created_at' | 'ended_at', ms: number) =>
    database.db.execute(sql`update calls set ${sql.identifier(column)} = ${sql.identifier(column)} - ${ms} * interval '1 millisecond' where id = ${callId}`);

  describe('claiming the media stream', () => {
    it('lets exactly one of several simultaneous streams claim a call, and keeps the winner and its node', async () => {
      const call = await testCall();
      const sids = ['MZa', 'MZb', 'MZc', 'MZd'];
      const results = await Promise.all(sids.map((streamSid) => lifecycle.claimMedia(call.id, { streamSid, providerCallSid: 'CA-one-stream' }, NODE)));
      expect(results.filter((r) => r === 'claimed')).toHaveLength(1);
      expect(results.filter((r) => r === 'taken')).toHaveLength(3);
      expect(await calls.get(orgId, call.id)).toMatchObject({ streamSid: sids[results.indexOf('claimed')], status: 'in_progress', mediaNodeId: NODE, endedAt: null });
    });

    it('writes call.started and call.answered once, with the claim', async () => {
      const call = await testCall();
      await Promise.all(['MZe', 'MZf', 'MZg'].map((streamSid) => lifecycle.claimMedia(call.id, { streamSid, providerCallSid: 'CA-started-once' }, NODE)));
      expect(await eventsOf(call.id)).toEqual(['call.created', 'call.started', 'call.answered']);
      const row = await calls.get(orgId, call.id);
      expect(row.answeredAt).toEqual(row.startedAt);
    });

    it('never reopens a call whose media already ended', async () => {
      const call = await testCall();
      await lifecycle.mediaEnded(call.id, 'socket_closed');
      expect(await lifecycle.claimMedia(call.id, { streamSid: 'MZlate', providerCallSid: 'CA-late' }, NODE)).toBe('ended');
    });
  });

  describe('finalization', () => {
    it('finalizes a test call when its media ends: completed, answered, one call.ended', async () => {
      const call = await testCall();
      await lifecycle.claimMedia(call.id, { streamSid: 'MZ1', providerCallSid: 'CA1' }, NODE);
      const row = await lifecycle.mediaEnded(call.id, 'stream_stopped');
      expect(row).toMatchObject({ status: 'completed', endReason: 'stream_stopped', finalizedAt: expect.any(Date), answeredAt: expect.any(Date) });
      expect(row!.durationSeconds).toBeGreaterThanOrEqual(0);
      await lifecycle.mediaEnded(call.id, 'socket_closed');
      expect(await ended(call.id)).toBe(1);
      expect((await calls.get(orgId, call.id)).endReason).toBe('stream_stopped');
    });

    it('waits for the carrier after the media of a carrier call ends, and takes its billed duration', async () => {
      const call = await outbound();
      const callSid = sid();
      await calls.placed(call.id, callSid, 'initiated');
      await lifecycle.claimMedia(call.id, { streamSid: 'MZ2', providerCallSid: callSid }, NODE);
      const afterMedia = await lifecycle.mediaEnded(call.id, 'stream_stopped');
      expect(afterMedia).toMatchObject({ status: 'in_progress', finalizedAt: null, endedAt: expect.any(Date) });
      const final = await lifecycle.carrierStatus({ providerCallSid: callSid }, { status: 'completed', durationSeconds: 17 });
      expect(final).toMatchObject({ status: 'completed', endReason: 'stream_stopped', durationSeconds: 17, finalizedAt: expect.any(Date) });
      await lifecycle.carrierStatus({ providerCallSid: callSid }, { status: 'completed', durationSeconds: 99 });
      expect(await ended(call.id)).toBe(1);
      expect((await calls.get(orgId, call.id)).durationSeconds).toBe(17);
    });

    it("says carrier_completed when the carrier's final status came before the stream stopped", async () => {
      const call = await outbound();
      const callSid = sid();
      await calls.placed(call.id, callSid, 'initiated');
      await lifecycle.claimMedia(call.id, { streamSid: 'MZcc', providerCallSid: callSid }, NODE);
      await lifecycle.carrierStatus({ providerCallSid: callSid }, { status: 'completed', durationSeconds: 4 });
      const final = await lifecycle.mediaEnded(call.id, 'stream_stopped');
      expect(final).toMatchObject({ status: 'completed', endReason: 'carrier_completed', durationSeconds: 4, finalizedAt: expect.any(Date) });
    });

    it('keeps a cause recorded before the carrier acted over the stream stop that follows', async () => {
      const call = await outbound();
      const callSid = sid();
      await calls.placed(call.id, callSid, 'initiated');
      await lifecycle.claimMedia(call.id, { streamSid: 'MZ3', providerCallSid: callSid }, NODE);
      expect(await lifecycle.recordCause(call.id, 'hangup_requested')).toBe(true);
      expect(await lifecycle.recordCause(call.id, 'transferred')).toBe(false);
      await lifecycle.mediaEnded(call.id, 'stream_stopped');
      const final = await lifecycle.carrierStatus({ providerCallSid: callSid }, { status: 'completed', durationSeconds: 3 });
      expect(final).toMatchObject({ status: 'completed', endReason: 'hangup_requested' });
    });

    it('withdraws a cause the carrier refused, so a later end records its own', async () => {
      const call = await testCall();
      await lifecycle.claimMedia(call.id, { streamSid: 'MZ4', providerCallSid: 'CA4' }, NODE);
      await lifecycle.recordCause(call.id, 'transferred', 'to +15550009999');
      await lifecycle.withdrawCause(call.id, 'transferred');
      expect(await lifecycle.mediaEnded(call.id, 'agent_hangup')).toMatchObject({ endReason: 'agent_hangup', endDetail: null });
    });

    it('stores a call that failed before the agent spoke as failed, not completed', async () => {
      const call = await testCall();
      await lifecycle.claimMedia(call.id, { streamSid: 'MZ5', providerCallSid: 'CA5' }, NODE);
      expect(await lifecycle.mediaEnded(call.id, 'provider_error', 'openai: 503')).toMatchObject({ status: 'failed', endReason: 'provider_error' });
    });

    it("keeps the carrier's unanswered status and no answer time for a call that never connected", async () => {
      const call = await outbound();
      const callSid = sid();
      await calls.placed(call.id, callSid, 'initiated');
      const final = await lifecycle.carrierStatus({ providerCallSid: callSid }, { status: 'no_answer', durationSeconds: 0 });
      expect(final).toMatchObject({ status: 'no_answer', endReason: 'not_answered', answeredAt: null, durationSeconds: 0, finalizedAt: expect.any(Date) });
    });

    it('never sets the answer time from an in-progress callback that comes after the end', async () => {
      const call = await outbound();
      const callSid = sid();
      await calls.placed(call.id, callSid, 'initiated');
      await lifecycle.carrierStatus({ providerCallSid: callSid }, { status: 'completed', durationSeconds: 0 });
      await lifecycle.carrierStatus({ providerCallSid: callSid }, { status: 'in_progress' });
      const row = await calls.get(orgId, call.id);
      expect(row.answeredAt).toBeNull();
      expect(await eventsOf(call.id)).not.toContain('call.answered');
    });

    it('finalizes once when the two end signals race', async () => {
      for (let i = 0; i < 5; i++) {
        const call = await outbound();
        const callSid = sid();
        await calls.placed(call.id, callSid, 'initiated');
        await lifecycle.claimMedia(call.id, { streamSid: `MZr${i}`, providerCallSid: callSid }, NODE);
        await Promise.all([
          lifecycle.mediaEnded(call.id, 'stream_stopped'),
          lifecycle.carrierStatus({ providerCallSid: callSid }, { status: 'completed', durationSeconds: 5 }),
          lifecycle.carrierStatus({ providerCallSid: callSid }, { status: 'completed', durationSeconds: 5 }),
          lifecycle.forceFinalize(call.id),
        ]);
        expect(await ended(call.id)).toBe(1);
      }
    });
  });

  describe('carrier callbacks matched by our call id', () => {
    it('attaches the carrier id of a callback that came before the carrier answered our create request', async () => {
      const call = await outbound();
      const callSid = sid();
      const row = await lifecycle.carrierStatus({ providerCallSid: callSid, callId: call.id }, { status: 'ringing' });
      expect(row).toMatchObject({ id: call.id, providerCallSid: callSid, status: 'ringing' });
      // The carrier's answer to the create request, arriving late, moves nothing back.
      expect(await calls.placed(call.id, callSid, 'initiated')).toMatchObject({ status: 'ringing' });
    });

    it('does not let a callback take over a call that already has another carrier id', async () => {
      const call = await outbound();
      await calls.placed(call.id, sid(), 'initiated');
      expect(await lifecycle.carrierStatus({ providerCallSid: sid(), callId: call.id }, { status: 'completed' })).toBeNull();
    });
  });

  describe('the sweep', () => {
    const sweep = (nodeLeaseMs = 60_000) => new LifecycleSweep({ db: database.db, lifecycle, nodeLeaseMs, testCallTtlMs: 60_000 });

    it('ends the live calls of a node whose lease ran out with server_crashed, and leaves a live node alone', async () => {
      const alive = new NodeLease(database.db, 60_000);
      await alive.start();
      const dead = 'node_dead';
      await database.db.insert(serveNodes).values({ id: dead, hostname: 'gone', pid: 1, heartbeatAt: new Date(Date.now() - 120_000) });
      const orphan = await testCall();
      const held = await testCall();
      await lifecycle.claimMedia(orphan.id, { streamSid: 'MZo', providerCallSid: 'CAo' }, dead);
      await lifecycle.claimMedia(held.id, { streamSid: 'MZh', providerCallSid: 'CAh' }, alive.id);
      await sweep().run();
      expect(await calls.get(orgId, orphan.id)).toMatchObject({ endReason: 'server_crashed', status: 'failed', finalizedAt: expect.any(Date), mediaEndedAt: expect.any(Date) });
      expect(await calls.get(orgId, held.id)).toMatchObject({ finalizedAt: null, endedAt: null });
      await alive.stop();
    });

    it('finalizes a call whose carrier callback never came once the grace period passed', async () => {
      const call = await outbound();
      const callSid = sid();
      await calls.placed(call.id, callSid, 'initiated');
      const lease = new NodeLease(database.db, 60_000);
      await lease.start();
      await lifecycle.claimMedia(call.id, { streamSid: 'MZg', providerCallSid: callSid }, lease.id);
      await lifecycle.mediaEnded(call.id, 'stream_stopped');
      await sweep().run();
      expect((await calls.get(orgId, call.id)).finalizedAt).toBeNull();
      await backdate(call.id, 'ended_at', 61_000);
      await sweep().run();
      expect(await calls.get(orgId, call.id)).toMatchObject({ status: 'completed', endReason: 'stream_stopped', finalizedAt: expect.any(Date) });
      await lease.stop();
    });

    it('expires a test call nobody connected to', async () => {
      const call = await testCall();
      await backdate(call.id, 'created_at', 61_000);
      await sweep().run();
      expect(await calls.get(orgId, call.id)).toMatchObject({ status: 'no_answer', endReason: 'not_answered', durationSeconds: 0, finalizedAt: expect.any(Date) });
    });

    it('marks an outbound call that never got a carrier id failed with placement_unknown after the deadline', async () => {
      const call = await outbound();
      await backdate(call.id, 'created_at', 61_000);
      await sweep().run();
      expect(await calls.get(orgId, call.id)).toMatchObject({ status: 'failed', endReason: 'placement_unknown', finalizedAt: expect.any(Date) });
    });

    it('attaches the carrier call the lookup finds instead of giving up', async () => {
      const call = await outbound();
      await backdate(call.id, 'created_at', 61_000);
      const found = sid();
      const looking = new LifecycleSweep({ db: database.db, lifecycle, nodeLeaseMs: 60_000, testCallTtlMs: 60_000, carrierLookup: async () => ({ providerCallSid: found, status: 'completed', durationSeconds: 8 }) });
      expect(await looking.run()).toMatchObject({ placementsFound: 1, placementsUnknown: 0 });
      expect(await calls.get(orgId, call.id)).toMatchObject({ providerCallSid: found, status: 'completed', durationSeconds: 8, finalizedAt: expect.any(Date) });
    });

    it('finalizes each call once when several nodes sweep at the same time', async () => {
      const batch = await Promise.all([testCall(), testCall(), testCall()]);
      for (const c of batch) await backdate(c.id, 'created_at', 61_000);
      await Promise.all([sweep().run(), sweep().run(), sweep().run()]);
      for (const c of batch) expect(await ended(c.id)).toBe(1);
    });
  });
});
