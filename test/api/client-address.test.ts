import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../helpers/app.js';

// A request as a reverse proxy forwards it: whatever X-Forwarded-For the client sent (forged, different
// every time), then the address the proxy itself saw. The socket peer (the proxy) is 127.0.0.1.
const viaProxy = (forged: string, client = '203.0.113.7') => ({ 'x-forwarded-for': `${forged}, ${client}` });

describe.each([
  ['a list of trusted proxy addresses', '127.0.0.1, 10.0.0.0/8'],
  ['a proxy-addr name', 'loopback'],
])('TRUST_PROXY as %s', (_what, trustProxy) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp({ TRUST_PROXY: trustProxy, RATE_LIMIT_PER_MINUTE: '5' });
  });
  afterAll(() => t.close());

  it('keeps the per-address API limit when every request forges a different X-Forwarded-For', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await t.app.inject({ method: 'GET', url: '/v1/agents', headers: viaProxy(`10.66.${i}.1`) });
      statuses.push(res.statusCode);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
  });

  it('keeps the per-address login limit when every attempt forges a different X-Forwarded-For', async () => {
    const statuses: number[] = [];
    // A different (unknown) email each time, so only the per-address limit can apply. The limit is 20 a
    // minute in a window aligned to the minute (with Redis): a run that straddles a boundary may get up to
    // 20 more through, never 41. Forged addresses that escaped the limit would never see a 429.
    for (let i = 0; i < 41 && !statuses.includes(429); i++) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: viaProxy(`192.0.2.${i}`, '203.0.113.8'),
        payload: { email: `guess-${i}@example.test`, password: 'not-the-password' },
      });
      statuses.push(res.statusCode);
    }
    expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.length).toBeGreaterThanOrEqual(21);
  });

  it('still tells apart two clients behind the proxy', async () => {
    for (let i = 0; i < 5; i++) await t.app.inject({ method: 'GET', url: '/v1/agents', headers: viaProxy('x', '203.0.113.9') });
    expect((await t.app.inject({ method: 'GET', url: '/v1/agents', headers: viaProxy('x', '203.0.113.9') })).statusCode).toBe(429);
    expect((await t.app.inject({ method: 'GET', url: '/v1/agents', headers: viaProxy('x', '203.0.113.10') })).statusCode).toBe(401);
  });
});

describe('TRUST_PROXY naming proxies the request did not come through', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp({ TRUST_PROXY: '10.0.0.0/8', RATE_LIMIT_PER_MINUTE: '3' });
  });
  afterAll(() => t.close());

  it('ignores X-Forwarded-For from an untrusted peer: the socket address is the client', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await t.app.inject({ method: 'GET', url: '/v1/agents', headers: { 'x-forwarded-for': `203.0.113.${i}` } });
      statuses.push(res.statusCode);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  });
});
