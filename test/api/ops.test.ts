import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';

describe('operational endpoints and HTTP conventions', () => {
  let t: TestApp;
  let org: TestOrg;
  beforeAll(async () => {
    t = await testApp({ RATE_LIMIT_PER_MINUTE: '30' });
    org = await t.createOrg();
  });
  afterAll(() => t.close());

  it('answers /health without credentials', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('reports the database, and Redis when configured, on /ready', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { database: 'ok', redis: process.env.REDIS_URL ? 'ok' : 'not_configured' } });
  });

  it('exposes HTTP latency and event-loop delay in Prometheus format', async () => {
    await t.as(org.keys.viewer, { method: 'GET', url: '/v1/agents' });
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toMatch(/vocelio_http_request_duration_seconds_bucket\{[^}]*route="\/v1\/agents"/);
    expect(res.body).toContain('nodejs_eventloop_lag_p99_seconds');
  });

  it('sends security headers', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health' });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['strict-transport-security']).toBeDefined();
    expect(res.headers['content-security-policy']).toBeDefined();
    expect(res.headers['x-frame-options']).toBeDefined();
  });

  it('echoes a sane caller request id and makes one up otherwise', async () => {
    const given = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'abc-123' } });
    expect(given.headers['x-request-id']).toBe('abc-123');
    const made = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'bad id with spaces' } });
    expect(made.headers['x-request-id']).toMatch(/^req_/);
  });

  it('puts the request id in error bodies', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/agents', headers: { 'x-request-id': 'trace-42' } });
    expect(res.json().error.requestId).toBe('trace-42');
  });

  it('answers unknown routes with the error shape', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('route_not_found');
  });

  it('limits requests per API key, with rate-limit headers and a Retry-After on 429', async () => {
    const key = (await t.as(org.keys.owner, { method: 'POST', url: '/v1/api-keys', payload: { name: 'burst', role: 'viewer' } })).json().secret;
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 31; i++) {
      last = await t.as(key, { method: 'GET', url: '/v1/agents' });
      statuses.push(last.statusCode);
    }
    expect(statuses.slice(0, 30).every((s) => s === 200)).toBe(true);
    expect(last!.statusCode).toBe(429);
    expect(last!.json().error.code).toBe('rate_limited');
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    expect(last!.headers['x-ratelimit-limit']).toBe('30');
  });

  it('keeps one key\'s limit from affecting another key', async () => {
    const res = await t.as(org.keys.viewer, { method: 'GET', url: '/v1/agents' });
    expect(res.statusCode).toBe(200);
  });

  it('counts rate limits in Redis when REDIS_URL is set, in memory otherwise', () => {
    expect(t.app.rateLimiter.backend).toBe(process.env.REDIS_URL ? 'redis' : 'memory');
  });
});
