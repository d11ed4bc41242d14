import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HTTPMethods, LightMyRequestResponse } from 'fastify';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { expectError } from '../helpers/errors.js';
import { newId } from '../../src/shared/ids.js';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio.js';
import { addMember, invite } from '../helpers/members.js';

interface Page {
  data: { id: string }[];
  nextCursor: string | null;
}

/** What org B owns; A's owner key is pointed at all of it. */
interface Resources {
  agentId: string;
  apiKeyId: string;
  memberId: string;
  invitationId: string;
  phoneNumberId: string;
}

describe('tenant isolation', () => {
  /** The carrier behind the phone-number routes; nothing A does to B's numbers may reach it. */
  let fake: FakeTwilio;
  let t: TestApp;
  let a: TestOrg;
  let b: TestOrg;
  let bOwns: Resources;

  const post = async (key: string, url: string, payload: object) => {
    const res = await t.as(key, { method: 'POST', url, payload });
    if (res.statusCode !== 201) throw new Error(`POST ${url}: ${res.body}`);
    return res.json<{ id: string }>().id;
  };

  /** Every id of a list, walking all its pages. */
  async function allIds(key: string, url: string): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const sep = url.includes('?') ? '&' : '?';
      const res = await t.as(key, { method: 'GET', url: `${url}${sep}limit=100${cursor ? `&cursor=${cursor}` : ''}` });
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json<Page>();
      ids.push(...page.data.map((d) => d.id));
      cursor = page.nextCursor;
    } while (cursor);
    return ids;
  }

  beforeAll(async () => {
    fake = await startFakeTwilio();
    t = await testApp({ TWILIO_ACCOUNT_SID: fake.accountSid, TWILIO_AUTH_TOKEN: fake.authToken, TWILIO_BASE_URL: fake.baseUrl });
    a = await t.createOrg('A');
    b = await t.createOrg('B');
    await post(a.keys.owner, '/v1/agents', { name: 'A agent' });
    await post(b.keys.owner, '/v1/agents', { name: 'B first agent' });
    await post(a.keys.owner, '/v1/phone-numbers', { phoneNumber: '+14155550101' });
    await post(b.keys.owner, '/v1/phone-numbers', { phoneNumber: '+14155550102' });
    const bAgentId = await post(b.keys.owner, '/v1/agents', { name: 'B agent', systemPrompt: 'Hello {{name}}' });
    bOwns = {
      agentId: bAgentId,
      apiKeyId: await post(b.keys.owner, '/v1/api-keys', { name: 'B key', role: 'viewer' }),
      memberId: (await addMember(t, b.keys.owner, { email: 'b-viewer@example.test', role: 'viewer' })).memberId,
      invitationId: (await invite(t, b.keys.owner, 'b-invitee@example.test', 'viewer')).id,
      phoneNumberId: await post(b.keys.owner, '/v1/phone-numbers', { phoneNumber: '+14155550177', agentId: bAgentId }),
    };
    // Every list needs items on both sides, and B's two pages.
    await invite(t, a.keys.owner, 'a-invitee@example.test', 'viewer');
    await invite(t, b.keys.owner, 'b-second-invitee@example.test', 'viewer');
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  // How org B reads each of its resources back, to prove A's attempt changed nothing.
  const readAsB: Record<string, (r: Resources) => Promise<LightMyRequestResponse>> = {
    agent: (r) => t.as(b.keys.owner, { method: 'GET', url: `/v1/agents/${r.agentId}` }),
    apiKey: (r) => t.as(b.keys.owner, { method: 'GET', url: `/v1/api-keys/${r.apiKeyId}` }),
    member: () => t.as(b.keys.owner, { method: 'GET', url: '/v1/members?limit=100' }),
    invitation: () => t.as(b.keys.owner, { method: 'GET', url: '/v1/invitations?limit=100' }),
    phoneNumber: (r) => t.as(b.keys.owner, { method: 'GET', url: `/v1/phone-numbers/${r.phoneNumberId}` }),
  };

  const attempts: { action: string; method: HTTPMethods; url: (r: Resources) => string; payload?: object; reads: keyof typeof readAsB }[] = [
    { action: 'read an agent', method: 'GET', url: (r) => `/v1/agents/${r.agentId}`, reads: 'agent' },
    { action: 'update an agent', method: 'PATCH', url: (r) => `/v1/agents/${r.agentId}`, payload: { name: 'hijacked', systemPrompt: '' }, reads: 'agent' },
    { action: 'delete an agent', method: 'DELETE', url: (r) => `/v1/agents/${r.agentId}`, reads: 'agent' },
    { action: 'start a test call to an agent', method: 'POST', url: (r) => `/v1/agents/${r.agentId}/test-calls`, reads: 'agent' },
    { action: 'read an API key', method: 'GET', url: (r) => `/v1/api-keys/${r.apiKeyId}`, reads: 'apiKey' },
    { action: 'revoke an API key', method: 'DELETE', url: (r) => `/v1/api-keys/${r.apiKeyId}`, reads: 'apiKey' },
    { action: "change a member's role", method: 'PATCH', url: (r) => `/v1/members/${r.memberId}`, payload: { role: 'owner' }, reads: 'member' },
    { action: 'remove a member', method: 'DELETE', url: (r) => `/v1/members/${r.memberId}`, reads: 'member' },
    { action: 'revoke an invitation', method: 'DELETE', url: (r) => `/v1/invitations/${r.invitationId}`, reads: 'invitation' },
    { action: 'read a phone number', method: 'GET', url: (r) => `/v1/phone-numbers/${r.phoneNumberId}`, reads: 'phoneNumber' },
    { action: 'unassign a phone number', method: 'PATCH', url: (r) => `/v1/phone-numbers/${r.phoneNumberId}`, payload: { agentId: null, friendlyName: 'hijacked' }, reads: 'phoneNumber' },
    { action: 'release a phone number', method: 'DELETE', url: (r) => `/v1/phone-numbers/${r.phoneNumberId}`, reads: 'phoneNumber' },
  ];

  describe("another organization's resources", () => {
    it.each(attempts)("answer 404 not_found when A's owner tries to $action of B's, and B's stays as it was", async ({ method, url, payload, reads }) => {
      const before = await readAsB[reads]!(bOwns);
      expect(before.statusCode).toBe(200);
      const twilioBefore = fake.requests.length;

      const res = await t.as(a.keys.owner, { method, url: url(bOwns), ...(payload ? { payload } : {}) });
      // Exactly an error body: no field of B's resource rides along.
      expectError(res, 404, 'not_found');

      expect((await readAsB[reads]!(bOwns)).json()).toEqual(before.json());
      // Nor did anything reach the carrier (a release there would cut B's number off whatever our rows say).
      expect(fake.requests.slice(twilioBefore)).toEqual([]);
    });

    it.each(attempts)("look exactly like ids that never existed when A tries to $action", async ({ method, url, payload }) => {
      const never: Resources = { agentId: newId('agt'), apiKeyId: newId('key'), memberId: newId('mem'), invitationId: newId('inv'), phoneNumberId: newId('pn') };
      const forB = await t.as(a.keys.owner, { method, url: url(bOwns), ...(payload ? { payload } : {}) });
      const forNothing = await t.as(a.keys.owner, { method, url: url(never), ...(payload ? { payload } : {}) });

      const comparable = (res: LightMyRequestResponse, r: Resources) => ({
        status: res.statusCode,
        body: res.body.replaceAll(res.headers['x-request-id'] as string, '<request>').replace(new RegExp(Object.values(r).join('|'), 'g'), '<id>'),
      });
      expect(comparable(forB, bOwns)).toEqual(comparable(forNothing, never));
    });

    it("leave B's API key working after A tried to revoke it", async () => {
      await t.as(a.keys.owner, { method: 'DELETE', url: `/v1/api-keys/${bOwns.apiKeyId}` });
      const bKey = await t.as(b.keys.owner, { method: 'GET', url: `/v1/api-keys/${bOwns.apiKeyId}` });
      expect(bKey.json()).toMatchObject({ revokedAt: null });
    });
  });

  describe('lists', () => {
    const lists = ['/v1/agents', '/v1/api-keys?includeRevoked=true', '/v1/members', '/v1/invitations', '/v1/audit-log', '/v1/phone-numbers'];

    it.each(lists)("%s with A's key holds A's items and none of B's", async (url) => {
      const aIds = await allIds(a.keys.owner, url);
      const bIds = await allIds(b.keys.owner, url);
      expect(aIds.length).toBeGreaterThan(0);
      expect(bIds.length).toBeGreaterThan(0);
      expect(aIds.filter((id) => bIds.includes(id))).toEqual([]);
    });

    it.each(lists)("%s with A's key and a cursor from B's list returns only A's items", async (url) => {
      const sep = url.includes('?') ? '&' : '?';
      const bFirstPage = (await t.as(b.keys.owner, { method: 'GET', url: `${url}${sep}limit=1` })).json<Page>();
      expect(bFirstPage.nextCursor).not.toBeNull();

      const res = await t.as(a.keys.owner, { method: 'GET', url: `${url}${sep}limit=100&cursor=${bFirstPage.nextCursor}` });
      expect(res.statusCode).toBe(200);
      const aIds = await allIds(a.keys.owner, url);
      const leaked = res.json<Page>().data.filter((item) => !aIds.includes(item.id));
      expect(leaked).toEqual([]);
    });
  });
});
