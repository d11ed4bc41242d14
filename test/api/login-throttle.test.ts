import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { eq } from 'drizzle-orm';
import { buildApp } from '../../src/app.js';
import { auditLog } from '../../src/audit/audit.table.js';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { expectError } from '../helpers/errors.js';

// Every attempt comes through the (loopback) proxy from a different client address, so only a per-account
// rule can slow a guesser down. The clock is the test's: no test sleeps through a delay.
describe('per-account login throttling', () => {
  let t: TestApp;
  let org: TestOrg;
  let clock = Date.parse('2026-01-05T09:00:00Z');
  let address = 0;

  beforeAll(async () => {
    t = await testApp({ TRUST_PROXY: 'loopback' }, { now: () => clock });
    org = await t.createOrg();
  });
  afterAll(() => t.close());

  const login = (email: string, password: string, app = t.app): Promise<LightMyRequestResponse> =>
    app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-forwarded-for': `198.51.100.${++address % 250}` }, payload: { email, password } });
  const wrong = (email: string, app = t.app) => login(email, 'not-the-password', app);
  const advance = (ms: number) => (clock += ms);
  const newUser = async () => {
    const other = await t.createOrg();
    return { email: other.ownerEmail, password: other.ownerPassword };
  };

  it('lets five wrong passwords through, then makes the sixth wait 1 s whatever address it comes from', async () => {
    const user = await newUser();
    for (let i = 0; i < 5; i++) expectError(await wrong(user.email), 401, 'invalid_credentials');
    const sixth = await wrong(user.email);
    const error = expectError(sixth, 429, 'login_throttled');
    expect(sixth.headers['retry-after']).toBe('1');
    expect(error.details).toEqual({ retryAfterSeconds: 1 });
  });

  it('doubles the wait after each further failure: 1 s, 2 s, 4 s', async () => {
    const user = await newUser();
    for (let i = 0; i < 5; i++) await wrong(user.email);
    for (const waitMs of [1000, 2000, 4000]) {
      advance(waitMs - 1);
      expectError(await wrong(user.email), 429, 'login_throttled');
      advance(1);
      expectError(await wrong(user.email), 401, 'invalid_credentials');
    }
    const next = await wrong(user.email);
    expect(next.headers['retry-after']).toBe('8');
  });

  it('caps the wait at 30 s, well under a minute', async () => {
    const user = await newUser();
    for (let i = 0; i < 5; i++) await wrong(user.email);
    for (let i = 0; i < 8; i++) {
      advance(60_000);
      await wrong(user.email);
    }
    expect((await wrong(user.email)).headers['retry-after']).toBe('30');
  });

  it('does not check the password of a throttled attempt: the right one is refused too, and nothing is audited', async () => {
    const user = await newUser();
    for (let i = 0; i < 5; i++) await wrong(user.email);
    const res = await login(user.email, user.password);
    expectError(res, 429, 'login_throttled');
    expect(res.cookies).toEqual([]);
    const rows = await t.database.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id'] as string));
    expect(rows).toEqual([]);
  });

  it('lets the right password in once the short delay has passed, and starts counting afresh', async () => {
    const user = await newUser();
    for (let i = 0; i < 5; i++) await wrong(user.email);
    advance(1000);
    const ok = await login(user.email, user.password);
    expect(ok.statusCode, ok.body).toBe(200);
    // Counting starts again: five more free attempts.
    for (let i = 0; i < 5; i++) expectError(await wrong(user.email), 401, 'invalid_credentials');
    expectError(await wrong(user.email), 429, 'login_throttled');
  });

  it('counts the email whatever its case', async () => {
    const user = await newUser();
    const capitalized = user.email[0]!.toUpperCase() + user.email.slice(1);
    for (const variant of [user.email, user.email.toUpperCase(), capitalized, user.email, user.email.toUpperCase()]) {
      expectError(await wrong(variant), 401, 'invalid_credentials');
    }
    expectError(await wrong(user.email), 429, 'login_throttled');
  });

  it('throttles each account on its own: another account, and an unknown email, are not held up', async () => {
    const user = await newUser();
    for (let i = 0; i < 6; i++) await wrong(user.email);
    expect((await login(org.ownerEmail, org.ownerPassword)).statusCode).toBe(200);
    expectError(await wrong('nobody-at-all@example.test'), 401, 'invalid_credentials');
  });

  it('throttles unknown emails exactly like real ones, so the answer does not reveal which exist', async () => {
    const user = await newUser();
    const statuses = async (email: string) => {
      const out: number[] = [];
      for (let i = 0; i < 7; i++) out.push((await wrong(email)).statusCode);
      return out;
    };
    expect(await statuses('ghost@example.test')).toEqual(await statuses(user.email));
  });

  it.skipIf(!process.env.REDIS_URL)('shares the count between serve nodes through Redis', async () => {
    const user = await newUser();
    const other = await buildApp(t.config, { database: t.database, redis: t.app.redis!, now: () => clock });
    try {
      for (let i = 0; i < 5; i++) await wrong(user.email, i % 2 ? other : t.app);
      expectError(await wrong(user.email, other), 429, 'login_throttled');
      expectError(await wrong(user.email, t.app), 429, 'login_throttled');
    } finally {
      await other.close();
    }
  });
});
