import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HTTPMethods } from 'fastify';
import { asc, eq } from 'drizzle-orm';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { expectError } from '../helpers/errors.js';
import { DEFAULT_AVAILABLE_NUMBERS, startFakeTwilio, type FakeTwilio, type FakeTwilioRequest } from '../fakes/twilio.js';
import { phoneNumbers } from '../../src/numbers/numbers.table.js';

/** A phone number as the API answers it. */
interface PhoneNumber {
  id: string;
  phoneNumber: string;
  friendlyName: string;
  provider: string;
  providerSid: string;
  agentId: string | null;
  capabilities: { voice: boolean; sms: boolean; mms: boolean; fax: boolean };
  createdAt: string;
  updatedAt: string;
}

interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

const VOICE_URL = 'https://vocelio.test/twilio/voice';
const STATUS_URL = 'https://vocelio.test/twilio/status';
const ALL_CAPS = { voice: true, sms: true, mms: true, fax: false };

// Numbers only the purchase tests use (Austin, 555-2xxx), so buying never changes what the search tests see.
const FOR_SALE = Array.from({ length: 60 }, (_, i) => `+1737555${2000 + i}`);

describe('/v1/phone-numbers without a carrier', () => {
  let t: TestApp;
  let org: TestOrg;

  beforeAll(async () => {
    t = await testApp();
    org = await t.createOrg();
  });
  afterAll(() => t.close());

  it('answers 503 telephony_not_configured to a search when no Twilio account is configured', async () => {
    const res = await t.as(org.keys.member, { method: 'GET', url: '/v1/phone-numbers/available?country=US' });
    expect(expectError(res, 503, 'telephony_not_configured').message).toMatch(/TWILIO_ACCOUNT_SID/);
  });

  it('answers 503 telephony_not_configured to a purchase and an import, storing nothing', async () => {
    const buy = await t.as(org.keys.admin, { method: 'POST', url: '/v1/phone-numbers', payload: { phoneNumber: '+14155550101' } });
    expectError(buy, 503, 'telephony_not_configured');
    const imported = await t.as(org.keys.admin, { method: 'POST', url: '/v1/phone-numbers/import', payload: { providerSid: `PN${'a'.repeat(32)}` } });
    expectError(imported, 503, 'telephony_not_configured');
    expect(await t.database.db.select().from(phoneNumbers)).toEqual([]);
  });

  it('still lists the (empty) numbers of the organization', async () => {
    const res = await t.as(org.keys.viewer, { method: 'GET', url: '/v1/phone-numbers' });
    expect(res.json()).toEqual({ data: [], nextCursor: null });
  });
});

describe('/v1/phone-numbers with Twilio', () => {
  let fake: FakeTwilio;
  let t: TestApp;
  let a: TestOrg;
  let b: TestOrg;
  let aAgent: string;
  let bAgent: string;
  const forSale = [...FOR_SALE];

  /** A number still for sale that no other test uses. */
  const freshNumber = (): string => {
    const n = forSale.shift();
    if (!n) throw new Error('the fake ran out of numbers for this file; add more to FOR_SALE');
    return n;
  };

  /** The REST requests the fake receives while `action` runs. */
  async function twilioRequestsDuring(action: () => Promise<unknown>): Promise<FakeTwilioRequest[]> {
    const from = fake.requests.length;
    await action();
    return fake.requests.slice(from);
  }
  const summary = (r: FakeTwilioRequest) => `${r.method} ${r.path.replace(`/2010-04-01/Accounts/${fake.accountSid}`, '')}`;

  /** Every row of the organization, released ones included. */
  const rowsOf = (org: TestOrg) =>
    t.database.db.select().from(phoneNumbers).where(eq(phoneNumbers.organizationId, org.id)).orderBy(asc(phoneNumbers.id));

  const search = (query: string) => t.as(a.keys.member, { method: 'GET', url: `/v1/phone-numbers/available?${query}` });

  async function buy(org: TestOrg, payload: object = { phoneNumber: freshNumber() }): Promise<PhoneNumber> {
    const res = await t.as(org.keys.admin, { method: 'POST', url: '/v1/phone-numbers', payload });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<PhoneNumber>();
  }

  const get = (org: TestOrg, id: string) => t.as(org.keys.viewer, { method: 'GET', url: `/v1/phone-numbers/${id}` });
  const patch = (org: TestOrg, id: string, payload: object) => t.as(org.keys.member, { method: 'PATCH', url: `/v1/phone-numbers/${id}`, payload });
  const release = (org: TestOrg, id: string) => t.as(org.keys.admin, { method: 'DELETE', url: `/v1/phone-numbers/${id}` });

  async function listIds(org: TestOrg, query = ''): Promise<string[]> {
    const res = await t.as(org.keys.viewer, { method: 'GET', url: `/v1/phone-numbers?limit=100${query}` });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<Page<PhoneNumber>>().data.map((n) => n.id);
  }

  const newAgent = async (org: TestOrg, name: string) =>
    (await t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: { name } })).json<{ id: string }>().id;

  beforeAll(async () => {
    fake = await startFakeTwilio({ availableNumbers: [...DEFAULT_AVAILABLE_NUMBERS, ...FOR_SALE.map((phoneNumber) => ({ phoneNumber, locality: 'Austin', region: 'TX' }))] });
    t = await testApp({
      TWILIO_ACCOUNT_SID: fake.accountSid,
      TWILIO_AUTH_TOKEN: fake.authToken,
      TWILIO_BASE_URL: fake.baseUrl,
      RATE_LIMIT_PER_MINUTE: '1000000',
    });
    a = await t.createOrg('A');
    b = await t.createOrg('B');
    aAgent = await newAgent(a, 'A front desk');
    bAgent = await newAgent(b, 'B front desk');
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  describe('searching numbers for sale', () => {
    it('returns the numbers of an area code in our shape, asking Twilio for voice-capable local numbers', async () => {
      const requests = await twilioRequestsDuring(async () => {
        const res = await search('country=US&areaCode=415');
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json()).toEqual({
          data: [
            { phoneNumber: '+14155550101', friendlyName: '(415) 555-0101', isoCountry: 'US', locality: 'San Francisco', region: 'CA', postalCode: '94107', capabilities: ALL_CAPS },
            { phoneNumber: '+14155550102', friendlyName: '(415) 555-0102', isoCountry: 'US', locality: 'San Francisco', region: 'CA', postalCode: '94107', capabilities: ALL_CAPS },
            { phoneNumber: '+14155550177', friendlyName: '(415) 555-0177', isoCountry: 'US', locality: 'San Francisco', region: 'CA', postalCode: '94110', capabilities: ALL_CAPS },
          ],
        });
      });
      expect(requests.map(summary)).toEqual(['GET /AvailablePhoneNumbers/US/Local.json']);
      expect(requests[0]!.query).toMatchObject({ AreaCode: '415', VoiceEnabled: 'true' });
      expect(requests[0]!.username).toBe(fake.accountSid);
    });

    it('narrows the search to numbers containing a pattern', async () => {
      const requests = await twilioRequestsDuring(async () => {
        const res = await search('country=US&contains=0177');
        expect(res.json<Page<{ phoneNumber: string }>>().data.map((n) => n.phoneNumber)).toEqual(['+14155550177']);
      });
      expect(requests[0]!.query).toMatchObject({ Contains: '0177' });
    });

    it('combines area code and pattern', async () => {
      const res = await search('country=US&areaCode=510&contains=0123');
      expect(res.json<Page<{ phoneNumber: string }>>().data.map((n) => n.phoneNumber)).toEqual(['+15105550123']);
    });

    it('searches another country, with null where Twilio has no region or postal code', async () => {
      const res = await search('country=GB');
      expect(res.json()).toEqual({
        data: [
          { phoneNumber: '+442071838750', friendlyName: '+442071838750', isoCountry: 'GB', locality: 'London', region: null, postalCode: null, capabilities: ALL_CAPS },
          { phoneNumber: '+442071838751', friendlyName: '+442071838751', isoCountry: 'GB', locality: 'London', region: null, postalCode: null, capabilities: ALL_CAPS },
        ],
      });
    });

    it('leaves out numbers that cannot take calls', async () => {
      const res = await search('country=US&areaCode=312');
      expect(res.json<Page<{ phoneNumber: string }>>().data.map((n) => n.phoneNumber)).toEqual(['+13125550151']);
    });

    it('returns at most `limit` numbers', async () => {
      const requests = await twilioRequestsDuring(async () => {
        const res = await search('country=US&limit=2');
        expect(res.json<Page<unknown>>().data).toHaveLength(2);
      });
      expect(requests[0]!.query).toMatchObject({ PageSize: '2' });
    });

    it('answers an empty list when nothing matches', async () => {
      const res = await search('country=US&areaCode=999');
      expect(res.json()).toEqual({ data: [] });
    });
  });

  describe('buying a number', () => {
    it('buys the number at Twilio with our voice URL and status callback on it, and stores it', async () => {
      const phoneNumber = freshNumber();
      let bought!: PhoneNumber;
      const requests = await twilioRequestsDuring(async () => {
        bought = await buy(a, { phoneNumber });
      });

      expect(requests.map(summary)).toEqual(['POST /IncomingPhoneNumbers.json']);
      expect(requests[0]!.params).toEqual({
        PhoneNumber: phoneNumber,
        VoiceUrl: VOICE_URL,
        VoiceMethod: 'POST',
        StatusCallback: STATUS_URL,
        StatusCallbackMethod: 'POST',
      });
      const atTwilio = fake.numbers.find((n) => n.phoneNumber === phoneNumber);
      expect(atTwilio).toMatchObject({ voiceUrl: VOICE_URL, voiceMethod: 'POST', statusCallback: STATUS_URL, statusCallbackMethod: 'POST' });

      expect(bought).toEqual({
        id: expect.stringMatching(/^pn_[0-9a-z]{26}$/),
        phoneNumber,
        friendlyName: atTwilio!.friendlyName,
        provider: 'twilio',
        providerSid: atTwilio!.sid,
        agentId: null,
        capabilities: ALL_CAPS,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      expect((await get(a, bought.id)).json()).toEqual(bought);
    });

    it('assigns the bought number to an agent of the organization, under the given name', async () => {
      const bought = await buy(a, { phoneNumber: freshNumber(), agentId: aAgent, friendlyName: 'Support line' });
      expect(bought).toMatchObject({ agentId: aAgent, friendlyName: 'Support line' });
    });

    it("answers 404 and buys nothing when the agent belongs to another organization", async () => {
      const phoneNumber = freshNumber();
      const before = await rowsOf(a);
      const requests = await twilioRequestsDuring(async () => {
        const res = await t.as(a.keys.admin, { method: 'POST', url: '/v1/phone-numbers', payload: { phoneNumber, agentId: bAgent } });
        expectError(res, 404, 'not_found');
      });
      expect(requests).toEqual([]);
      expect(fake.available.map((n) => n.phoneNumber)).toContain(phoneNumber);
      expect(await rowsOf(a)).toEqual(before);
    });

    it("answers 409 number_not_available, with Twilio's error code, for a number that is not for sale, storing nothing", async () => {
      const before = await rowsOf(a);
      const res = await t.as(a.keys.admin, { method: 'POST', url: '/v1/phone-numbers', payload: { phoneNumber: '+17375559999' } });
      const error = expectError(res, 409, 'number_not_available');
      expect(error.message).toMatch(/not available/);
      expect(error.details).toMatchObject({ provider: 'twilio', providerCode: 21422 });
      expect(await rowsOf(a)).toEqual(before);
    });

    it('answers 409 number_not_available to a number another organization already bought', async () => {
      const phoneNumber = freshNumber();
      await buy(b, { phoneNumber });
      const res = await t.as(a.keys.admin, { method: 'POST', url: '/v1/phone-numbers', payload: { phoneNumber } });
      expectError(res, 409, 'number_not_available');
      expect((await rowsOf(a)).map((r) => r.phoneNumber)).not.toContain(phoneNumber);
    });

    it('answers 502 provider_unavailable when Twilio fails with a 5xx, storing nothing', async () => {
      const phoneNumber = freshNumber();
      const before = await rowsOf(a);
      fake.failNext({ status: 503, code: 20503, message: 'Service Unavailable', method: 'POST', path: '/IncomingPhoneNumbers.json' });
      const res = await t.as(a.keys.admin, { method: 'POST', url: '/v1/phone-numbers', payload: { phoneNumber } });
      expectError(res, 502, 'provider_unavailable');
      expect(await rowsOf(a)).toEqual(before);
      expect(fake.available.map((n) => n.phoneNumber)).toContain(phoneNumber);
    });

    it('answers 502 provider_auth_failed, pointing at our credentials, when Twilio refuses them', async () => {
      fake.failNext({ status: 401, code: 20003, message: 'Authenticate', method: 'POST', path: '/IncomingPhoneNumbers.json' });
      const res = await t.as(a.keys.admin, { method: 'POST', url: '/v1/phone-numbers', payload: { phoneNumber: freshNumber() } });
      expect(expectError(res, 502, 'provider_auth_failed').message).toMatch(/TWILIO_ACCOUNT_SID/);
    });
  });

  describe('importing a number the account owns', () => {
    it('takes the number over by its SID and points its webhooks at us', async () => {
      const owned = fake.addOwnedNumber({ phoneNumber: freshNumber(), friendlyName: 'Old office line', voiceUrl: 'https://old.example/voice', statusCallback: 'https://old.example/status' });
      let imported!: PhoneNumber;
      const requests = await twilioRequestsDuring(async () => {
        const res = await t.as(a.keys.admin, { method: 'POST', url: '/v1/phone-numbers/import', payload: { providerSid: owned.sid, agentId: aAgent } });
        expect(res.statusCode, res.body).toBe(201);
        imported = res.json<PhoneNumber>();
      });

      expect(imported).toMatchObject({ phoneNumber: owned.phoneNumber, providerSid: owned.sid, provider: 'twilio', friendlyName: 'Old office line', agentId: aAgent });
      expect(owned).toMatchObject({ voiceUrl: VOICE_URL, voiceMethod: 'POST', statusCallback: STATUS_URL, statusCallbackMethod: 'POST' });
      const update = requests.find((r) => r.method === 'POST');
      expect(summary(update!)).toBe(`POST /IncomingPhoneNumbers/${owned.sid}.json`);
      expect(update!.params).toEqual({ VoiceUrl: VOICE_URL, VoiceMethod: 'POST', StatusCallback: STATUS_URL, StatusCallbackMethod: 'POST' });
      expect(await listIds(a)).toContain(imported.id);
    });

    it('answers 409 conflict to importing the same SID twice, without asking Twilio again', async () => {
      const owned = fake.addOwnedNumber({ phoneNumber: freshNumber() });
      const first = await t.as(a.keys.admin, { method: 'POST', url: '/v1/phone-numbers/import', payload: { providerSid: owned.sid } });
      expect(first.statusCode, first.body).toBe(201);
      const before = { a: await rowsOf(a), b: await rowsOf(b) };

      const requests = await twilioRequestsDuring(async () => {
        expectError(await t.as(a.keys.admin, { method: 'POST', url: '/v1/phone-numbers/import', payload: { providerSid: owned.sid } }), 409, 'conflict');
        // A live number belongs to one organization only.
        expectError(await t.as(b.keys.admin, { method: 'POST', url: '/v1/phone-numbers/import', payload: { providerSid: owned.sid } }), 409, 'conflict');
      });
      expect(requests).toEqual([]);
      expect({ a: await rowsOf(a), b: await rowsOf(b) }).toEqual(before);
    });

    it('answers 409 conflict to one of two simultaneous imports of the same SID, storing it once', async () => {
      const owned = fake.addOwnedNumber({ phoneNumber: freshNumber() });
      const send = (org: TestOrg) => t.as(org.keys.admin, { method: 'POST', url: '/v1/phone-numbers/import', payload: { providerSid: owned.sid } });
      const answers = await Promise.all([send(a), send(b)]);
      expect(answers.map((r) => r.statusCode).sort()).toEqual([201, 409]);
      expectError(answers.find((r) => r.statusCode === 409)!, 409, 'conflict');
      const rows = [...(await rowsOf(a)), ...(await rowsOf(b))].filter((r) => r.providerSid === owned.sid);
      expect(rows).toHaveLength(1);
    });

    it('answers 404 not_found to a SID the account does not own, storing nothing', async () => {
      const before = await rowsOf(a);
      const res = await t.as(a.keys.admin, { method: 'POST', url: '/v1/phone-numbers/import', payload: { providerSid: `PN${'0'.repeat(32)}` } });
      expectError(res, 404, 'not_found');
      expect(await rowsOf(a)).toEqual(before);
    });
  });

  describe('assigning a number to an agent', () => {
    it('assigns the number to an agent and unassigns it with null, without asking Twilio', async () => {
      const number = await buy(a);
      const requests = await twilioRequestsDuring(async () => {
        const assigned = await patch(a, number.id, { agentId: aAgent });
        expect(assigned.statusCode, assigned.body).toBe(200);
        expect(assigned.json()).toMatchObject({ id: number.id, agentId: aAgent });
        expect((await get(a, number.id)).json()).toMatchObject({ agentId: aAgent });

        const unassigned = await patch(a, number.id, { agentId: null });
        expect(unassigned.json()).toMatchObject({ id: number.id, agentId: null });
        expect((await get(a, number.id)).json()).toMatchObject({ agentId: null });
      });
      expect(requests).toEqual([]);
    });

    it('renames a number without touching its agent', async () => {
      const number = await buy(a, { phoneNumber: freshNumber(), agentId: aAgent });
      const res = await patch(a, number.id, { friendlyName: 'Night line' });
      expect(res.json()).toMatchObject({ friendlyName: 'Night line', agentId: aAgent });
    });

    it("answers 404 to assigning an agent of another organization, leaving the number as it was", async () => {
      const number = await buy(a, { phoneNumber: freshNumber(), agentId: aAgent });
      expectError(await patch(a, number.id, { agentId: bAgent }), 404, 'not_found');
      expect((await get(a, number.id)).json()).toEqual(number);
    });
  });

  describe('releasing a number', () => {
    it('releases the number at Twilio and drops it from the list', async () => {
      const number = await buy(a);
      const requests = await twilioRequestsDuring(async () => {
        const res = await release(a, number.id);
        expect(res.statusCode, res.body).toBe(204);
      });

      expect(requests.map(summary)).toEqual([`DELETE /IncomingPhoneNumbers/${number.providerSid}.json`]);
      expect(fake.numbers.map((n) => n.sid)).not.toContain(number.providerSid);
      expectError(await get(a, number.id), 404, 'not_found');
      expect(await listIds(a)).not.toContain(number.id);
      // The row stays for the calls that point at it.
      expect((await rowsOf(a)).find((r) => r.id === number.id)).toMatchObject({ releasedAt: expect.any(Date), agentId: null });
    });

    it('lets a released number be bought again later', async () => {
      const phoneNumber = freshNumber();
      const first = await buy(a, { phoneNumber });
      expect((await release(a, first.id)).statusCode).toBe(204);
      // Twilio puts a released number back on sale.
      fake.available.push({ phoneNumber });

      const again = await buy(b, { phoneNumber });
      expect(again).toMatchObject({ phoneNumber });
      expect(again.id).not.toBe(first.id);
      expect(again.providerSid).not.toBe(first.providerSid);
    });

    it('marks the number released when Twilio no longer has it (released in its console)', async () => {
      const number = await buy(a);
      fake.numbers.splice(fake.numbers.findIndex((n) => n.sid === number.providerSid), 1);
      expect((await release(a, number.id)).statusCode).toBe(204);
      expect(await listIds(a)).not.toContain(number.id);
    });

    it('keeps the number when Twilio fails to release it', async () => {
      const number = await buy(a);
      fake.failNext({ status: 500, code: 20500, method: 'DELETE', path: '/IncomingPhoneNumbers/' });
      expectError(await release(a, number.id), 502, 'provider_unavailable');
      expect((await get(a, number.id)).json()).toEqual(number);
      expect(fake.numbers.map((n) => n.sid)).toContain(number.providerSid);
    });
  });

  describe('listing numbers', () => {
    let c: TestOrg;
    let cAgent: string;
    let cNumbers: PhoneNumber[];

    beforeAll(async () => {
      c = await t.createOrg('C');
      cAgent = await newAgent(c, 'C agent');
      cNumbers = [await buy(c), await buy(c, { phoneNumber: freshNumber(), agentId: cAgent }), await buy(c)];
    });

    it('pages through the numbers, newest first, with cursors', async () => {
      const first = (await t.as(c.keys.viewer, { method: 'GET', url: '/v1/phone-numbers?limit=2' })).json<Page<PhoneNumber>>();
      expect(first.data).toHaveLength(2);
      expect(first.nextCursor).toEqual(expect.any(String));
      const second = (await t.as(c.keys.viewer, { method: 'GET', url: `/v1/phone-numbers?limit=2&cursor=${first.nextCursor}` })).json<Page<PhoneNumber>>();
      expect(second.nextCursor).toBeNull();

      expect([...first.data, ...second.data].map((n) => n.id)).toEqual(cNumbers.map((n) => n.id).reverse());
      expect(second.data[0]).toEqual(cNumbers[0]);
    });

    it('filters the list by agent', async () => {
      expect(await listIds(c, `&agentId=${cAgent}`)).toEqual([cNumbers[1]!.id]);
    });

    it('answers 400 invalid_cursor to a cursor it did not issue', async () => {
      const cursor = Buffer.from('agt_01jd5z3k8m0000000000000000').toString('base64url');
      expectError(await t.as(c.keys.viewer, { method: 'GET', url: `/v1/phone-numbers?cursor=${cursor}` }), 400, 'invalid_cursor');
    });
  });

  describe("another organization's numbers", () => {
    let bNumber: PhoneNumber;

    beforeAll(async () => {
      bNumber = await buy(b, { phoneNumber: freshNumber(), agentId: bAgent });
    });

    const attempts: { action: string; method: HTTPMethods; payload?: object }[] = [
      { action: 'read', method: 'GET' },
      { action: 'reassign', method: 'PATCH', payload: { agentId: null, friendlyName: 'hijacked' } },
      { action: 'release', method: 'DELETE' },
    ];

    it.each(attempts)("answer 404 not_found when A's owner tries to $action B's number, and nothing changes", async ({ method, payload }) => {
      const before = await rowsOf(b);
      const requests = await twilioRequestsDuring(async () => {
        const res = await t.as(a.keys.owner, { method, url: `/v1/phone-numbers/${bNumber.id}`, ...(payload ? { payload } : {}) });
        expectError(res, 404, 'not_found');
      });
      expect(requests).toEqual([]);
      expect(await rowsOf(b)).toEqual(before);
      expect(fake.numbers.find((n) => n.sid === bNumber.providerSid)).toMatchObject({ voiceUrl: VOICE_URL });
    });

    it("are not in A's list", async () => {
      expect(await listIds(a)).not.toContain(bNumber.id);
      expect(await listIds(a, `&agentId=${bAgent}`)).toEqual([]);
    });
  });

  describe('bad input', () => {
    /** Sends the request and asserts that it answered 400 `code` without any request reaching Twilio. */
    async function refusedLocally(method: HTTPMethods, url: string, key: string, payload: object | undefined, code: string) {
      const before = { a: await rowsOf(a), sold: fake.available.length };
      const requests = await twilioRequestsDuring(async () => {
        const res = await t.as(key, { method, url, ...(payload ? { payload } : {}) });
        expectError(res, 400, code);
      });
      expect(requests).toEqual([]);
      expect({ a: await rowsOf(a), sold: fake.available.length }).toEqual(before);
    }

    it.each(['4155550101', '+1 415 555 0101', '+1415555010a', '', '+0415555010'])(
      'answers 400 validation_failed to buying %j, which is not E.164',
      async (phoneNumber) => {
        await refusedLocally('POST', '/v1/phone-numbers', a.keys.admin, { phoneNumber }, 'validation_failed');
      },
    );

    it('answers 400 invalid_phone_number to an E.164-shaped number that does not exist', async () => {
      await refusedLocally('POST', '/v1/phone-numbers', a.keys.admin, { phoneNumber: '+12345678' }, 'invalid_phone_number');
    });

    it.each(['country=usa', 'country=us', 'country=1', 'areaCode=41', 'contains=a%20b', 'limit=0', 'limit=51', 'country=US&region=CA'])(
      'answers 400 validation_failed to the search %s',
      async (query) => {
        await refusedLocally('GET', `/v1/phone-numbers/available?${query}`, a.keys.member, undefined, 'validation_failed');
      },
    );

    it.each([
      ['buy', 'POST', '/v1/phone-numbers', { phoneNumber: '+14155550101', price: 1 }],
      ['import', 'POST', '/v1/phone-numbers/import', { providerSid: `PN${'a'.repeat(32)}`, voiceUrl: 'https://evil.example' }],
      ['import', 'POST', '/v1/phone-numbers/import', { providerSid: 'PN123' }],
    ] as const)('answers 400 validation_failed to a %s body %j', async (_what, method, url, payload) => {
      await refusedLocally(method, url, a.keys.admin, payload, 'validation_failed');
    });

    it('answers 400 validation_failed to an unknown field or an empty body in a PATCH', async () => {
      const number = await buy(a);
      await refusedLocally('PATCH', `/v1/phone-numbers/${number.id}`, a.keys.member, { agentId: null, ringTimeout: 5 }, 'validation_failed');
      await refusedLocally('PATCH', `/v1/phone-numbers/${number.id}`, a.keys.member, {}, 'validation_failed');
      expect((await get(a, number.id)).json()).toEqual(number);
    });

    it('answers 400 validation_failed to an id that is not a phone number id', async () => {
      await refusedLocally('DELETE', `/v1/phone-numbers/${aAgent}`, a.keys.admin, undefined, 'validation_failed');
    });
  });
});
