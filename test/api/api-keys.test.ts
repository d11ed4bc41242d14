import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, sql } from 'drizzle-orm';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { expectError } from '../helpers/errors.js';
import { apiKeys } from '../../src/auth/auth.table.js';
import { asSession, sessionOf } from '../helpers/members.js';

interface ApiKey {
  id: string;
  prefix: string;
  role: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  createdBy: { type: string; id: string; email?: string } | null;
}
type Created = ApiKey & { secret: string };
interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

describe('API keys', () => {
  let t: TestApp;
  let org: TestOrg;
  let n = 0;

  const create = async (payload: object = {}, by?: string): Promise<Created> => {
    const res = await t.as(by ?? org.keys.owner, { method: 'POST', url: '/v1/api-keys', payload: { name: `key ${++n}`, ...payload } });
    if (res.statusCode !== 201) throw new Error(`create key: ${res.body}`);
    return res.json<Created>();
  };
  const get = (id: string) => t.as(org.keys.owner, { method: 'GET', url: `/v1/api-keys/${id}` });
  const revoke = (id: string, by?: string) => t.as(by ?? org.keys.owner, { method: 'DELETE', url: `/v1/api-keys/${id}` });
  const me = (key: string) => t.as(key, { method: 'GET', url: '/v1/me' });
  const keyIdOf = async (secret: string) => (await me(secret)).json<{ actor: { id: string } }>().actor.id;
  const allKeys = async () =>
    (await t.as(org.keys.owner, { method: 'GET', url: '/v1/api-keys?limit=100&includeRevoked=true' })).json<Page<ApiKey>>().data;

  beforeAll(async () => {
    t = await testApp();
    org = await t.createOrg();
  });
  afterAll(() => t.close());

  describe('the secret', () => {
    it('is returned by create, starting with vk_', async () => {
      const key = await create();
      expect(key.secret).toMatch(/^vk_[A-Za-z0-9_-]{40}$/);
    });

    it('never appears in the list or in a get', async () => {
      const key = await create();
      const list = await t.as(org.keys.owner, { method: 'GET', url: '/v1/api-keys?limit=100' });
      const one = await get(key.id);
      for (const res of [list, one]) {
        expect(res.statusCode).toBe(200);
        expect(res.body).not.toContain(key.secret);
        expect(res.body).not.toContain('"secret"');
      }
    });

    it('starts with the prefix the list shows for the key', async () => {
      const key = await create();
      const listed = (await allKeys()).find((k) => k.id === key.id)!;
      expect(listed.prefix.length).toBeGreaterThanOrEqual(8);
      expect(key.secret.startsWith(listed.prefix)).toBe(true);
    });
  });

  describe('revocation', () => {
    it('refuses a revoked key on its very next request with 401 saying it was revoked', async () => {
      const key = await create({ role: 'viewer' });
      expect((await me(key.secret)).statusCode).toBe(200);
      expect((await revoke(key.id)).statusCode).toBe(200);

      const error = expectError(await me(key.secret), 401, 'unauthorized');
      expect(error.message).toMatch(/revoked/);
    });

    it('answers 200 to revoking twice and keeps the first revocation time', async () => {
      const key = await create();
      const first = await revoke(key.id);
      const second = await revoke(key.id);
      expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
      expect(first.json<ApiKey>().revokedAt).not.toBeNull();
      expect(second.json<ApiKey>().revokedAt).toBe(first.json<ApiKey>().revokedAt);
    });

    it('leaves a revoked key out of the list unless includeRevoked is set', async () => {
      const key = await create();
      await revoke(key.id);
      const active = (await t.as(org.keys.owner, { method: 'GET', url: '/v1/api-keys?limit=100' })).json<Page<ApiKey>>().data;
      expect(active.map((k) => k.id)).not.toContain(key.id);
      expect((await allKeys()).map((k) => k.id)).toContain(key.id);
    });
  });

  describe('what a key may hand out', () => {
    it('refuses an admin creating an owner key with 403, creating nothing', async () => {
      const before = await allKeys();
      const res = await t.as(org.keys.admin, { method: 'POST', url: '/v1/api-keys', payload: { name: 'escalation', role: 'owner' } });
      expectError(res, 403, 'forbidden');
      expect(await allKeys()).toHaveLength(before.length);
    });

    it('refuses an admin revoking an owner key with 403, and the owner key keeps working', async () => {
      const ownerKeyId = await keyIdOf(org.keys.owner);
      expectError(await revoke(ownerKeyId, org.keys.admin), 403, 'forbidden');

      expect((await get(ownerKeyId)).json<ApiKey>().revokedAt).toBeNull();
      expect((await me(org.keys.owner)).statusCode).toBe(200);
    });

    it('lets an admin revoke a key of a lower role', async () => {
      const key = await create({ role: 'member' });
      expect((await revoke(key.id, org.keys.admin)).statusCode).toBe(200);
    });

    it('refuses granting a scope the creating key lacks, creating nothing', async () => {
      const keyManager = await create({ role: 'admin', scopes: ['api_keys'] });
      const before = await allKeys();
      const res = await t.as(keyManager.secret, { method: 'POST', url: '/v1/api-keys', payload: { name: 'wider', role: 'viewer', scopes: ['agents'] } });
      expect(expectError(res, 403, 'forbidden').message).toContain('agents');
      expect(await allKeys()).toHaveLength(before.length);
    });

    it('refuses the default all-scopes grant to a key that does not hold *', async () => {
      const keyManager = await create({ role: 'admin', scopes: ['api_keys'] });
      const res = await t.as(keyManager.secret, { method: 'POST', url: '/v1/api-keys', payload: { name: 'everything', role: 'viewer' } });
      expectError(res, 403, 'forbidden');
    });

    it('lets a key grant the read-only form of a scope it holds', async () => {
      const keyManager = await create({ role: 'admin', scopes: ['api_keys'] });
      const narrower = await create({ role: 'viewer', scopes: ['api_keys:read'] }, keyManager.secret);
      expect(narrower.scopes).toEqual(['api_keys:read']);
    });
  });

  describe('who made it', () => {
    it('shows the user and email for a key made in the dashboard, in the list and in a get', async () => {
      const login = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: org.ownerEmail, password: org.ownerPassword } });
      const userId = login.json<{ user: { id: string } }>().user.id;
      const res = await asSession(t, sessionOf(login), { method: 'POST', url: '/v1/api-keys', payload: { name: 'from the dashboard', role: 'viewer' } });
      const key = res.json<Created>();
      const expected = { type: 'user', id: userId, email: org.ownerEmail };
      expect(key.createdBy).toEqual(expected);
      expect((await allKeys()).find((k) => k.id === key.id)?.createdBy).toEqual(expected);
      expect((await get(key.id)).json<ApiKey>().createdBy).toEqual(expected);
    });

    it('shows the key that made a key made with a key', async () => {
      const parent = await create({ role: 'admin' });
      const child = await create({ role: 'viewer' }, parent.secret);
      expect((await get(child.id)).json<ApiKey>().createdBy).toEqual({ type: 'api_key', id: parent.id });
      expect((await get(parent.id)).json<ApiKey>().createdBy).toEqual({ type: 'api_key', id: await keyIdOf(org.keys.owner) });
    });
  });

  describe('usage and expiry', () => {
    it('has no last_used_at until the key is used, then the time of use', async () => {
      const key = await create({ role: 'viewer' });
      expect(key.lastUsedAt).toBeNull();
      const before = Date.now();
      await me(key.secret);

      const lastUsedAt = (await get(key.id)).json<ApiKey>().lastUsedAt;
      expect(lastUsedAt).not.toBeNull();
      expect(Date.parse(lastUsedAt!)).toBeGreaterThanOrEqual(before - 5_000);
    });

    it('refuses expiresAt in the past with 400, creating nothing', async () => {
      const before = await allKeys();
      const res = await t.as(org.keys.owner, {
        method: 'POST',
        url: '/v1/api-keys',
        payload: { name: 'stale', expiresAt: new Date(Date.now() - 60_000).toISOString() },
      });
      expect(expectError(res, 400, 'invalid_request').details).toEqual({ field: 'expiresAt' });
      expect(await allKeys()).toHaveLength(before.length);
    });

    it('accepts a key until it expires, then refuses it with 401 saying it expired', async () => {
      const key = await create({ role: 'viewer', expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
      expect((await me(key.secret)).statusCode).toBe(200);

      await t.database.db.update(apiKeys).set({ expiresAt: sql`now() - interval '1 second'` }).where(eq(apiKeys.id, key.id));

      const error = expectError(await me(key.secret), 401, 'unauthorized');
      expect(error.message).toMatch(/expired/);
    });
  });

  describe('audit', () => {
    const auditTargets = async (action: string) =>
      (await t.as(org.keys.owner, { method: 'GET', url: `/v1/audit-log?action=${action}&limit=100` }))
        .json<Page<{ targetId: string; actorId: string }>>()
        .data.map((e) => e.targetId);

    it('records api_key.created with the new key as target', async () => {
      const key = await create();
      expect(await auditTargets('api_key.created')).toContain(key.id);
    });

    it('records api_key.revoked with the revoked key as target', async () => {
      const key = await create();
      await revoke(key.id);
      expect(await auditTargets('api_key.revoked')).toContain(key.id);
    });
  });

  describe('pagination', () => {
    let paged: TestOrg;
    let createdIds: string[];
    let pages: Page<ApiKey>[];

    beforeAll(async () => {
      paged = await t.createOrg('Paged');
      createdIds = [];
      for (let i = 0; i < 5; i++) {
        // Ids carry millisecond time; a pause keeps "newest" unambiguous between keys made back to back.
        await sleep(2);
        const res = await t.as(paged.keys.owner, { method: 'POST', url: '/v1/api-keys', payload: { name: `paged ${i}`, role: 'viewer' } });
        createdIds.push(res.json<Created>().id);
      }
      pages = [];
      let cursor: string | null = null;
      do {
        const res = await t.as(paged.keys.owner, { method: 'GET', url: `/v1/api-keys?limit=2${cursor ? `&cursor=${cursor}` : ''}` });
        expect(res.statusCode, res.body).toBe(200);
        pages.push(res.json<Page<ApiKey>>());
        cursor = pages.at(-1)!.nextCursor;
      } while (cursor && pages.length < 20);
    });

    it('walks every key exactly once with limit=2 and nextCursor', async () => {
      const walked = pages.flatMap((p) => p.data.map((k) => k.id));
      const all = (await t.as(paged.keys.owner, { method: 'GET', url: '/v1/api-keys?limit=100' })).json<Page<ApiKey>>().data.map((k) => k.id);
      // The org's four role keys plus the five made here.
      expect(all).toHaveLength(9);
      expect([...walked].sort()).toEqual([...all].sort());
    });

    it('lists newest first', () => {
      const walked = pages.flatMap((p) => p.data.map((k) => k.id));
      expect(walked.slice(0, 5)).toEqual([...createdIds].reverse());
    });

    it('fills every page but the last, which alone has nextCursor null', () => {
      expect(pages.map((p) => p.data.length)).toEqual([2, 2, 2, 2, 1]);
      expect(pages.map((p) => p.nextCursor === null)).toEqual([false, false, false, false, true]);
    });

    it.each([
      ['a cursor with its id bytes overwritten', (c: string) => `${c.slice(0, -4)}AAAA`],
      ['a cursor with bytes appended', (c: string) => `${c}AAAA`],
      ['a cursor from the agents list', () => Buffer.from('agt_01jd5z3k8m0000000000000000').toString('base64url')],
      ['a string that was never a cursor', () => 'not-a-cursor'],
    ])('refuses %s with 400 invalid_cursor', async (_what, tamper) => {
      const res = await t.as(paged.keys.owner, { method: 'GET', url: `/v1/api-keys?limit=2&cursor=${tamper(pages[0]!.nextCursor!)}` });
      expectError(res, 400, 'invalid_cursor');
    });
  });
});
