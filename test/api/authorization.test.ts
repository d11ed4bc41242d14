import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HTTPMethods, LightMyRequestResponse } from 'fastify';
import { asc, eq } from 'drizzle-orm';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { expectError } from '../helpers/errors.js';
import { ROLES, memberships, type Role } from '../../src/organizations/organizations.table.js';
import { agents } from '../../src/agents/agents.table.js';
import { apiKeys } from '../../src/auth/auth.table.js';
import { invitations } from '../../src/organizations/invitations.table.js';
import { addMember, invite } from '../helpers/members.js';
import { phoneNumbers } from '../../src/numbers/numbers.table.js';
import { calls } from '../../src/calls/calls.table.js';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio.js';

/**
 * The specification: the least role each /v1 route needs, keyed `METHOD path` as the OpenAPI document
 * names it. A route the app serves without an entry here (or an entry for a route that is gone) fails
 * the coverage test, so nobody can add a route without deciding who may call it.
 */
const REQUIRED_ROLE: Record<string, Role> = {
  'GET /v1/me': 'viewer',
  'GET /v1/agents': 'viewer',
  'POST /v1/agents': 'member',
  'GET /v1/agents/{id}': 'viewer',
  'PATCH /v1/agents/{id}': 'member',
  'DELETE /v1/agents/{id}': 'member',
  'POST /v1/agents/{id}/test-calls': 'member',
  'GET /v1/api-keys': 'admin',
  'POST /v1/api-keys': 'admin',
  'GET /v1/api-keys/{id}': 'admin',
  'DELETE /v1/api-keys/{id}': 'admin',
  'GET /v1/members': 'viewer',
  'POST /v1/members': 'admin',
  'PATCH /v1/members/{id}': 'admin',
  'DELETE /v1/members/{id}': 'admin',
  'POST /v1/invitations': 'admin',
  'GET /v1/invitations': 'admin',
  'DELETE /v1/invitations/{id}': 'admin',
  'GET /v1/audit-log': 'admin',
  'GET /v1/phone-numbers/available': 'member',
  'GET /v1/phone-numbers': 'viewer',
  'GET /v1/phone-numbers/{id}': 'viewer',
  'POST /v1/phone-numbers': 'admin',
  'POST /v1/phone-numbers/import': 'admin',
  'PATCH /v1/phone-numbers/{id}': 'member',
  'DELETE /v1/phone-numbers/{id}': 'admin',
  'GET /v1/calls': 'viewer',
  'POST /v1/calls': 'member',
  'GET /v1/calls/{id}': 'viewer',
  'POST /v1/calls/{id}/hangup': 'member',
  'DELETE /v1/calls/{id}': 'admin',
  'GET /v1/calls/{id}/recording': 'viewer',
  'GET /v1/events/stream': 'viewer',
};

/** Routes whose success is a stream that never ends: read up to the response head, then dropped. */
const STREAMING = new Set(['GET /v1/events/stream']);

const run = randomBytes(3).toString('hex');
let serial = 0;
const unique = () => `${run}-${++serial}`;

/** The carrier the phone-number routes talk to; every test here may buy, import and release at it. */
let fake: FakeTwilio;
// Numbers for sale (and to import), plenty for every target and body this file makes.
const forSale = Array.from({ length: 40 }, (_, i) => `+1737555${2000 + i}`);
const ownable = Array.from({ length: 200 }, (_, i) => `+1737555${3000 + i}`);
const nextForSale = () => fake.available[0]!.phoneNumber;
const nextOwnable = () => {
  const phoneNumber = ownable.shift();
  if (!phoneNumber) throw new Error('out of numbers to import; add more to `ownable`');
  return phoneNumber;
};

/** A valid body for every route that takes one, so that only credentials decide the outcome. */
const BODIES: Record<string, () => unknown> = {
  'POST /v1/agents': () => ({ name: `Agent ${unique()}` }),
  'PATCH /v1/agents/{id}': () => ({ name: `Renamed ${unique()}` }),
  'POST /v1/agents/{id}/test-calls': () => ({}),
  'POST /v1/api-keys': () => ({ name: `Key ${unique()}`, role: 'viewer' }),
  'POST /v1/members': () => ({ email: `member-${unique()}@example.test`, role: 'viewer' }),
  'PATCH /v1/members/{id}': () => ({ role: 'member' }),
  'POST /v1/invitations': () => ({ email: `invitee-${unique()}@example.test`, role: 'viewer' }),
  'POST /v1/phone-numbers': () => ({ phoneNumber: nextForSale() }),
  // A number the account owns at Twilio but nobody imported yet.
  'POST /v1/phone-numbers/import': () => ({ providerSid: fake.addOwnedNumber({ phoneNumber: nextOwnable() }).sid }),
  'PATCH /v1/phone-numbers/{id}': () => ({ friendlyName: `Renamed ${unique()}` }),
  // The agent and its number are made in beforeAll.
  'POST /v1/calls': () => ({ agentId: callAgent.agentId, phoneNumberId: callAgent.numberId, to: '+14155550123' }),
};

/** An agent with a number of its own, for placing calls. */
const callAgent = { agentId: '', numberId: '' };

const HTTP_METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);

interface Route {
  key: string;
  method: string;
  path: string;
  takesBody: boolean;
}

/** Every /v1 operation in the app's own OpenAPI document. */
function v1Routes(t: TestApp): Route[] {
  const doc = t.app.swagger() as { paths: Record<string, Record<string, { requestBody?: unknown }>> };
  return Object.entries(doc.paths)
    .filter(([path]) => path.startsWith('/v1/'))
    .flatMap(([rawPath, operations]) =>
      Object.entries(operations)
        .filter(([method]) => HTTP_METHODS.has(method))
        .map(([method, op]) => {
          const path = rawPath.replace(/\/$/, '');
          return { key: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), path, takesBody: op.requestBody !== undefined };
        }),
    );
}

const isSuccess = (res: LightMyRequestResponse) => res.statusCode >= 200 && res.statusCode < 300;

describe('authorization of every /v1 route', () => {
  let t: TestApp;
  let org: TestOrg;
  let routes: Route[];
  /** Existing resources of the org, by the path segment that names their collection. */
  let targets: Record<string, string>;

  const owner = (method: 'POST', url: string, payload: object) => t.as(org.keys.owner, { method, url, payload });

  // Each creates a fresh resource of the org that the minimum role is allowed to act on.
  const makeTarget: Record<string, () => Promise<string>> = {
    agents: async () => (await owner('POST', '/v1/agents', { name: `Target ${unique()}` })).json<{ id: string }>().id,
    'api-keys': async () => (await owner('POST', '/v1/api-keys', { name: `Target ${unique()}`, role: 'member' })).json<{ id: string }>().id,
    members: async () => (await addMember(t, org.keys.owner, { email: `target-${unique()}@example.test`, role: 'viewer' })).memberId,
    invitations: async () => (await invite(t, org.keys.owner, `target-${unique()}@example.test`, 'viewer')).id,
    'phone-numbers': async () => (await owner('POST', '/v1/phone-numbers', { phoneNumber: nextForSale() })).json<{ id: string }>().id,
    // A live call with no carrier leg (as a test call is): it can be read and hung up.
    calls: async () => (await t.app.calls.create(org.id, { agentId: null, direction: 'inbound' })).id,
  };

  // Routes whose target must be in a particular state.
  const makeTargetForRoute: Record<string, () => Promise<string>> = {
    'GET /v1/calls/{id}/recording': async () => {
      const call = await t.app.calls.create(org.id, { agentId: null, direction: 'inbound' });
      const dir = await mkdtemp(join(tmpdir(), 'vocelio-rec-'));
      const file = join(dir, 'call.wav');
      await writeFile(file, Buffer.from('RIFF0000WAVE'));
      const key = `${org.id}/${call.id}.wav`;
      const { bytes } = await t.app.recordings.save(key, file);
      await t.app.calls.setRecording(call.id, key, bytes);
      return call.id;
    },
    'DELETE /v1/calls/{id}': async () => {
      const call = await t.app.calls.create(org.id, { agentId: null, direction: 'inbound' });
      await t.app.callLifecycle.mediaEnded(call.id, 'stream_stopped');
      return call.id;
    },
  };

  const collectionOf = (route: Route) => route.path.split('/')[2]!;

  async function send(route: Route, authorization: string | undefined, id?: string, payload = BODIES[route.key]?.() as object | undefined): Promise<LightMyRequestResponse> {
    let url = route.path;
    if (url.includes('{id}')) {
      if (!id) throw new Error(`${route.key} needs an id`);
      url = url.replace('{id}', id);
    }
    const res = await t.app.inject({
      method: route.method as HTTPMethods,
      url,
      headers: authorization === undefined ? {} : { authorization },
      payload,
      payloadAsStream: STREAMING.has(route.key),
    });
    if (!STREAMING.has(route.key)) return res;
    // Only a refusal ends on its own: read its (JSON) body; an accepted stream is closed from our side.
    const stream = res.stream();
    if (isSuccess(res)) {
      stream.destroy();
      return res;
    }
    let body = '';
    for await (const chunk of stream) body += String(chunk);
    return { ...res, body, json: () => JSON.parse(body) as unknown } as LightMyRequestResponse;
  }

  /** Everything a /v1 route could change in the org, straight from the tables. */
  async function orgState() {
    const db = t.database.db;
    return {
      agents: await db.select().from(agents).where(eq(agents.organizationId, org.id)).orderBy(asc(agents.id)),
      // Authenticating stamps last_used_at; that is bookkeeping, not a change the route made.
      apiKeys: (await db.select().from(apiKeys).where(eq(apiKeys.organizationId, org.id)).orderBy(asc(apiKeys.id))).map(
        ({ lastUsedAt: _lastUsedAt, ...key }) => key,
      ),
      members: await db.select().from(memberships).where(eq(memberships.organizationId, org.id)).orderBy(asc(memberships.id)),
      invitations: await db.select().from(invitations).where(eq(invitations.organizationId, org.id)).orderBy(asc(invitations.id)),
      phoneNumbers: await db.select().from(phoneNumbers).where(eq(phoneNumbers.organizationId, org.id)).orderBy(asc(phoneNumbers.id)),
      calls: await db.select().from(calls).where(eq(calls.organizationId, org.id)).orderBy(asc(calls.id)),
      // What the carrier holds: a refused request must not have bought, configured or released anything.
      twilioNumbers: fake.numbers.map((n) => ({ ...n })),
    };
  }

  /**
   * Sends every route with the same credentials against the shared targets; reports status, error, whether
   * state moved and whether any request reached Twilio.
   */
  async function refusals(forRoutes: Route[], authorization: string | undefined) {
    const outcome: Record<string, unknown> = {};
    for (const route of forRoutes) {
      // The body first: building the import body adds a number at the fake, which is setup, not the route's doing.
      const payload = BODIES[route.key]?.() as object | undefined;
      const before = await orgState();
      const twilioBefore = fake.requests.length;
      const res = await send(route, authorization, targets[collectionOf(route)], payload);
      outcome[route.key] = {
        status: res.statusCode,
        body: res.json(),
        stateUnchanged: JSON.stringify(await orgState()) === JSON.stringify(before),
        twilioUntouched: fake.requests.length === twilioBefore,
      };
    }
    return outcome;
  }

  const refused = (forRoutes: Route[], status: number, code: string) =>
    Object.fromEntries(
      forRoutes.map((r) => [r.key, { status, body: { error: { code, message: expect.any(String), details: null, requestId: expect.any(String) } }, stateUnchanged: true, twilioUntouched: true }]),
    );

  beforeAll(async () => {
    fake = await startFakeTwilio({ availableNumbers: forSale.map((phoneNumber) => ({ phoneNumber })) });
    t = await testApp({ TWILIO_ACCOUNT_SID: fake.accountSid, TWILIO_AUTH_TOKEN: fake.authToken, TWILIO_BASE_URL: fake.baseUrl });
    org = await t.createOrg();
    callAgent.agentId = (await owner('POST', '/v1/agents', { name: 'Caller' })).json<{ id: string }>().id;
    callAgent.numberId = (await owner('POST', '/v1/phone-numbers', { phoneNumber: nextForSale(), agentId: callAgent.agentId })).json<{ id: string }>().id;
    routes = v1Routes(t);
    targets = {};
    for (const collection of new Set(routes.filter((r) => r.path.includes('{id}')).map(collectionOf))) {
      const make = makeTarget[collection];
      if (!make) throw new Error(`no test resource for /v1/${collection}/{id}; add one to makeTarget`);
      targets[collection] = await make();
    }
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  describe('the route list', () => {
    it('is discovered from the OpenAPI document and includes the agents and api-keys routes', () => {
      const keys = routes.map((r) => r.key);
      expect(keys).toEqual(expect.arrayContaining(['GET /v1/agents', 'POST /v1/agents', 'DELETE /v1/agents/{id}', 'POST /v1/api-keys', 'DELETE /v1/api-keys/{id}']));
    });

    it('has a required role in this specification for every route the app serves, and none for routes it does not', () => {
      expect(Object.keys(REQUIRED_ROLE).sort()).toEqual(routes.map((r) => r.key).sort());
    });

    it('has a valid body in this specification for every route that takes one', () => {
      expect(Object.keys(BODIES).sort()).toEqual(routes.filter((r) => r.takesBody).map((r) => r.key).sort());
    });
  });

  describe('authentication', () => {
    it('answers 401 unauthorized to a request without credentials on every route, changing nothing', async () => {
      expect(await refusals(routes, undefined)).toEqual(refused(routes, 401, 'unauthorized'));
    });

    it('answers 401 unauthorized to a garbage bearer key on every route, changing nothing', async () => {
      expect(await refusals(routes, `Bearer vk_${randomBytes(30).toString('base64url')}`)).toEqual(refused(routes, 401, 'unauthorized'));
    });
  });

  describe('roles', () => {
    it.each(ROLES.filter((r) => r !== 'owner'))('answers 403 forbidden to a %s key on every route that needs a higher role, changing nothing', async (role) => {
      const above = routes.filter((r) => ROLES.indexOf(REQUIRED_ROLE[r.key]!) > ROLES.indexOf(role));
      expect(await refusals(above, `Bearer ${org.keys[role]}`)).toEqual(refused(above, 403, 'forbidden'));
    });

    it('lets a key with exactly the required role use every route', async () => {
      const outcome: Record<string, string> = {};
      for (const route of routes) {
        const make = makeTargetForRoute[route.key] ?? makeTarget[collectionOf(route)];
        const id = route.path.includes('{id}') ? await make!() : undefined;
        const res = await send(route, `Bearer ${org.keys[REQUIRED_ROLE[route.key]!]}`, id);
        outcome[route.key] = isSuccess(res) ? '2xx' : `${res.statusCode} ${res.body}`;
      }
      expect(outcome).toEqual(Object.fromEntries(routes.map((r) => [r.key, '2xx'])));
    });
  });

  describe('scopes', () => {
    let readOnly: string;
    beforeAll(async () => {
      // The admin role would allow everything below; only the scope can be what refuses.
      const res = await owner('POST', '/v1/api-keys', { name: 'agents reader', role: 'admin', scopes: ['agents:read'] });
      readOnly = res.json<{ secret: string }>().secret;
    });

    it('lets a key scoped to agents:read list agents and read one', async () => {
      const list = await t.as(readOnly, { method: 'GET', url: '/v1/agents' });
      expect(list.statusCode).toBe(200);
      const one = await t.as(readOnly, { method: 'GET', url: `/v1/agents/${targets.agents}` });
      expect(one.json()).toMatchObject({ id: targets.agents });
    });

    it('refuses a key scoped to agents:read to create an agent, creating nothing', async () => {
      const before = await orgState();
      const res = await t.as(readOnly, { method: 'POST', url: '/v1/agents', payload: { name: 'not allowed' } });
      expect(expectError(res, 403, 'forbidden').message).toMatch(/scope/);
      expect(await orgState()).toEqual(before);
    });

    it('refuses a key scoped to agents:read to change or delete an agent', async () => {
      const patch = await t.as(readOnly, { method: 'PATCH', url: `/v1/agents/${targets.agents}`, payload: { name: 'not allowed' } });
      const del = await t.as(readOnly, { method: 'DELETE', url: `/v1/agents/${targets.agents}` });
      expect([patch.statusCode, del.statusCode]).toEqual([403, 403]);
    });

    it('refuses a key scoped to agents:read on /v1/api-keys', async () => {
      const list = await t.as(readOnly, { method: 'GET', url: '/v1/api-keys' });
      expectError(list, 403, 'forbidden');
      const create = await t.as(readOnly, { method: 'POST', url: '/v1/api-keys', payload: { name: 'escalation', scopes: ['agents:read'] } });
      expectError(create, 403, 'forbidden');
    });
  });

  describe('audit', () => {
    it('records a permission denial in the audit log, where the owner can read it', async () => {
      const denied = await t.as(org.keys.viewer, { method: 'DELETE', url: `/v1/agents/${targets.agents}` });
      expectError(denied, 403, 'forbidden');
      const viewerKeyId = (await t.as(org.keys.viewer, { method: 'GET', url: '/v1/me' })).json<{ actor: { id: string } }>().actor.id;

      const log = await t.as(org.keys.owner, { method: 'GET', url: '/v1/audit-log?action=permission.denied&limit=100' });
      const entry = log.json<{ data: { requestId: string }[] }>().data.find((e) => e.requestId === denied.headers['x-request-id']);
      expect(entry).toMatchObject({
        action: 'permission.denied',
        actorType: 'api_key',
        actorId: viewerKeyId,
        metadata: { method: 'DELETE', route: '/v1/agents/:id', needs: { resource: 'agents', role: 'member' }, role: 'viewer' },
      });
    });
  });
});
