// The call-session factory: sessions are built from the app's services in one place, and the node's
// registry of live calls (map and gauge) follows each session from creation to its end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp, type TestOrg } from '../../test/helpers/app.js';
import type { CallEvent } from '../calls/call-events.js';
import type { TwilioOutbound } from './media-stream/twilio-protocol.js';

describe('the call-session factory', () => {
  let t: TestApp;
  let org: TestOrg;
  const events: CallEvent[] = [];

  beforeAll(async () => {
    t = await testApp();
    org = await t.createOrg();
    t.app.callEvents.subscribe((e) => events.push(e));
  });
  afterAll(() => t.close());

  const liveCalls = async () => (await t.app.callLatencies.liveCalls.get()).values[0]?.value;

  it('builds a session from the app services, registers it live and forgets it when the call ends', async () => {
    const call = await t.app.calls.create(org.id, { agentId: null, direction: 'inbound', fromNumber: '+15550001111', toNumber: '+15550002222' });
    await t.app.callLifecycle.claimMedia(call.id, { streamSid: 'MZfactory', providerCallSid: 'CAfactory' }, t.app.nodeLease.id);
    const sent: TwilioOutbound[] = [];
    const hangUps: Array<[number, string]> = [];
    const session = t.app.callSessionFactory.create(
      { callId: call.id, organizationId: org.id, streamSid: 'MZfactory', callSid: 'CAfactory', agent: null, variables: {}, direction: 'inbound', carrierLeg: false, ourNumber: '+15550002222', awaitAnsweredBy: false },
      { log: t.app.log, send: (m) => sent.push(m), hangUp: (code, reason) => hangUps.push([code, reason]) },
    );
    expect(t.app.callSessions.get(call.id)).toBe(session);
    expect(await liveCalls()).toBe(1);

    session.start();
    await session.end('agent_hangup');

    expect(t.app.callSessions.has(call.id)).toBe(false);
    expect(await liveCalls()).toBe(0);
    expect(hangUps).toEqual([[1000, 'agent_hangup']]);
    expect(await t.app.calls.get(org.id, call.id)).toMatchObject({ status: 'completed', endReason: 'agent_hangup' });
    // Its start and end are durable events (written with the claim and the finalization), not live ones: a call
    // with no agent publishes nothing on the bus.
    await new Promise((r) => setTimeout(r, 100));
    expect(events.filter((e) => e.callId === call.id)).toEqual([]);
    expect(sent).toEqual([]);
  });
});
