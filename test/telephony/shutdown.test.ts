import { describe, expect, it } from 'vitest';
import { testApp } from '../helpers/app.js';
import { TwilioStreamClient } from '../../src/simulator/twilio-stream-client.js';
import { CallsService } from '../../src/calls/calls.service.js';

describe('closing the server with live calls', () => {
  it('ends each live call with server_shutdown, closing its socket normally', async () => {
    const t = await testApp();
    const org = await t.createOrg();
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const call = await t.app.calls.create(org.id, { agentId: null, direction: 'inbound' });
    const client = new TwilioStreamClient({ url: `${address.replace('http', 'ws')}/twilio/media`, customParameters: { token: await t.app.calls.issueStreamToken(call) } });
    await client.connect();
    const deadline = Date.now() + 5000;
    while (!t.app.callSessions.has(call.id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

    // app.close() alone: the test's database stays open so the record can be read afterwards.
    await t.app.close();
    expect(await client.closed).toEqual({ code: 1000, reason: 'server_shutdown' });
    expect(await new CallsService(t.database.db).get(org.id, call.id)).toMatchObject({ endReason: 'server_shutdown', status: 'completed' });
    await t.app.redis?.quit();
    await t.database.close();
  });
});
