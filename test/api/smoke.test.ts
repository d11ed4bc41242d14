import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';

describe('smoke', () => {
  let t: TestApp;
  let org: TestOrg;
  beforeAll(async () => {
    t = await testApp();
    org = await t.createOrg();
  });
  afterAll(() => t.close());

  it('creates and lists an agent', async () => {
    const res = await t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'A' } });
    expect(res.statusCode).toBe(201);
    const list = await t.as(org.keys.viewer, { method: 'GET', url: '/v1/agents' });
    expect(list.json().data).toHaveLength(1);
  });
});
