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
    await t.app.calls.claimStream(call.id, { streamSid: 'MZfactory', providerCallSid: 'CAfactory' });
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
    // The session published through the app's event bus (over Redis when configured), with the call's identity
    // filled in; its start is a durable event (written with the stream's claim), not a live one.
    const ofCall = () => events.filter((e) => e.callId === call.id);
    const deadline = Date.now() + 5000;
    while (ofCall().length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    expect(ofCall().map((e) => e.type)).toEqual(['call.ended']);
    expect(ofCall().every((e) => e.organizationId === org.id)).toBe(true);
    expect(sent).toEqual([]);
  });
});
