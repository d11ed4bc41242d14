import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../../test/helpers/database.js';
import type { Database } from '../db/client.js';
import { cliServices } from '../cli/services.js';
import { bootstrapOrganization } from '../organizations/bootstrap.js';
import { EventsService } from './events.service.js';
import { EventFeed } from './event-feed.js';
import type { NewEvent, StoredEvent } from './event-types.js';

const until = async (check: () => boolean, ms = 5000, what = 'condition') => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('the durable event feed', () => {
  let database: Database;
  let events: EventsService;
  let orgId: string;

  beforeAll(async () => {
    database = await freshDatabase();
    events = new EventsService(database.db);
    const org = await bootstrapOrganization(cliServices(database.db), { organizationName: 'Feed', email: 'feed@example.test', password: 'a-long-password' });
    orgId = org.organization.id;
  });
  afterAll(() => database.close());

  const started = (callId: string): NewEvent => ({ organizationId: orgId, type: 'call.started', subject: callId, payload: { callId, startedAt: new Date().toISOString(), providerCallSid: null, streamSid: 'MZ1' } });

  it('hands committed events to listeners at once, woken by the commit rather than a poll', async () => {
    // A poll this slow cannot be what delivers within the test's time.
    const feed = new EventFeed(database, events, { pollMs: 60_000, onError: (err) => { throw err; } });
    const seen: StoredEvent[] = [];
    feed.subscribe((e) => seen.push(e));
    await feed.start();
    try {
      const first = await events.record(database.db, started('call_a'));
      const second = await database.db.transaction(async (tx) => events.record(tx, started('call_b')));
      await until(() => seen.length === 2, 3000, 'both events');
      expect(seen.map((e) => e.id)).toEqual([first, second]);
      expect(seen[1]!.seq).toBe(seen[0]!.seq + 1);
      expect(seen[0]).toMatchObject({ organizationId: orgId, type: 'call.started', subject: 'call_a', payload: { callId: 'call_a', streamSid: 'MZ1' } });
    } finally {
      await feed.close();
    }
  });

  it('never hands out an event whose transaction rolled back', async () => {
    const feed = new EventFeed(database, events, { pollMs: 50, onError: () => {} });
    const seen: string[] = [];
    feed.subscribe((e) => seen.push(e.subject));
    await feed.start();
    try {
      await database.db
        .transaction(async (tx) => {
          await events.record(tx, started('call_rolled_back'));
          throw new Error('the call could not be claimed');
        })
        .catch(() => {});
      await events.record(database.db, started('call_after'));
      await feed.sync();
      await feed.sync();
      expect(seen).toEqual(['call_after']);
    } finally {
      await feed.close();
    }
  });

  it.runIf(process.env.DATABASE_URL)('numbers events in commit order, so a reader past one has seen every event before it', async () => {
    // A transaction that wrote its event first (smaller id) but commits last.
    let commitSlow!: () => void;
    const slowGate = new Promise<void>((resolve) => (commitSlow = resolve));
    let slowWritten!: () => void;
    const slowReady = new Promise<void>((resolve) => (slowWritten = resolve));
    const before = await events.maxSeq();
    const slow = database.db.transaction(async (tx) => {
      const id = await events.record(tx, started('call_slow'));
      slowWritten();
      await slowGate;
      return id;
    });
    await slowReady;
    const fast = await events.record(database.db, started('call_fast'));
    await events.stamp();
    const firstRead = await events.after(before, 100);
    expect(firstRead.map((e) => e.id)).toEqual([fast]);
    commitSlow();
    const slowId = await slow;
    expect(slowId < fast).toBe(true);
    await events.stamp();
    // Reading on from where the first read stopped finds the late commit: nothing fell behind the cursor.
    const secondRead = await events.after(firstRead[0]!.seq, 100);
    expect(secondRead.map((e) => e.id)).toEqual([slowId]);
  });
});
