import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { expectError } from '../helpers/errors.js';
import { agents } from '../../src/agents/agents.table.js';
import type { AgentTool } from '../../src/agents/agents.schemas.js';
import { SecretBox, SecretKeyError, keyIdOf } from '../../src/shared/secret-box.js';
import { TwilioStreamClient } from '../../src/simulator/twilio-stream-client.js';

const SECRET = 'Bearer sk-live-0123456789abcdef';

const httpTool = (url: string, over: Record<string, unknown> = {}) => ({
  type: 'http',
  name: 'lookup',
  description: 'Finds an order',
  url,
  parameters: { type: 'object', properties: { id: { type: 'string' } } },
  ...over,
});

describe('HTTP tool URLs are checked when an agent is saved', () => {
  let t: TestApp;
  let org: TestOrg;
  const create = (tools: unknown[]) => t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'Tools', tools } });

  beforeAll(async () => {
    t = await testApp();
    org = await t.createOrg();
  });
  afterAll(() => t.close());

  it.each([
    ['loopback through IPv4-mapped IPv6', 'http://[::ffff:127.0.0.1]:8080/hook', /127\.0\.0\.1.*loopback/],
    ['loopback in decimal', 'http://2130706433/', /loopback/],
    ['the cloud metadata address', 'http://169.254.169.254/latest/meta-data/', /link-local/],
    ['a private IPv4 network', 'https://10.1.2.3/api', /private/],
    ['carrier-grade NAT space', 'http://100.64.0.1/', /carrier-grade NAT/],
    ['the unspecified address', 'http://0.0.0.0:3000/', /unspecified/],
    ['IPv6 link-local beyond fe80::/16', 'http://[febf::1]/', /link-local/],
    ['IPv6 site-local', 'http://[fec0::1]/', /site-local/],
    ['IPv6 unique-local', 'http://[fd00::1]/', /unique-local/],
    ['loopback through NAT64', 'http://[64:ff9b::7f00:1]/', /NAT64.*loopback/],
    ['localhost', 'http://localhost:3000/', /localhost/],
    ['LOCALHOST with a trailing dot', 'http://LOCALHOST./', /localhost/],
    ['credentials in the URL', 'https://user:pass@api.example.com/orders', /credentials/],
  ])('refuses a tool URL pointing at %s with 400 naming the field', async (_what, url, reason) => {
    const res = await create([{ type: 'builtin', name: 'end_call' }, httpTool(url)]);
    const error = expectError(res, 400, 'invalid_request');
    expect(error.details).toEqual({ field: 'tools.1.url' });
    expect(error.message).toMatch(reason);
  });

  it('refuses a PATCH that points a tool at a private address and changes nothing', async () => {
    const agent = (await create([httpTool('https://api.example.com/orders')])).json<{ id: string }>();
    const res = await t.as(org.keys.member, { method: 'PATCH', url: `/v1/agents/${agent.id}`, payload: { tools: [httpTool('http://[::ffff:a00:1]/')] } });
    const error = expectError(res, 400, 'invalid_request');
    expect(error).toMatchObject({ details: { field: 'tools.0.url' }, message: expect.stringMatching(/10\.0\.0\.1.*private/) });
    const after = await t.as(org.keys.viewer, { method: 'GET', url: `/v1/agents/${agent.id}` });
    expect(after.json().tools[0].url).toBe('https://api.example.com/orders');
  });

  it('accepts a public host name (it is resolved and checked again at call time)', async () => {
    const res = await create([httpTool('https://API.Example.com./orders')]);
    expect(res.statusCode).toBe(201);
  });
});

describe('HTTP tool URLs when the operator allows private networks', () => {
  let t: TestApp;
  let org: TestOrg;

  beforeAll(async () => {
    t = await testApp({ TOOLS_ALLOW_PRIVATE_NETWORK: 'true' });
    org = await t.createOrg();
  });
  afterAll(() => t.close());

  it('accepts loopback and private tool URLs', async () => {
    const res = await t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'Intranet', tools: [httpTool('http://localhost:8080/'), httpTool('http://10.0.0.2/', { name: 'other' })] } });
    expect(res.statusCode).toBe(201);
  });

  it('still refuses credentials in a tool URL', async () => {
    const res = await t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'Creds', tools: [httpTool('http://admin:hunter2@10.0.0.2/')] } });
    expect(expectError(res, 400, 'invalid_request').details).toEqual({ field: 'tools.0.url' });
  });
});

describe('HTTP tool headers are write-only and encrypted at rest', () => {
  let t: TestApp;
  let org: TestOrg;
  let readerKey: string;

  const createWithSecret = async (): Promise<string> => {
    const res = await t.as(org.keys.member, {
      method: 'POST',
      url: '/v1/agents',
      payload: { name: 'Secretive', tools: [httpTool('https://api.example.com/orders', { headers: { Authorization: SECRET, 'X-Tenant': 'acme' } })] },
    });
    expect(res.statusCode).toBe(201);
    expect(res.body).not.toContain(SECRET);
    return res.json<{ id: string }>().id;
  };
  const storedTools = async (id: string): Promise<AgentTool[]> => (await t.database.db.select().from(agents).where(eq(agents.id, id)))[0]!.tools;
  const headersForCall = async (id: string) => {
    const agent = await t.app.agents.forCall(org.id, id);
    const tool = agent.tools[0];
    return tool?.type === 'http' ? tool.headers : undefined;
  };

  beforeAll(async () => {
    t = await testApp();
    org = await t.createOrg();
    const res = await t.as(org.keys.owner, { method: 'POST', url: '/v1/api-keys', payload: { name: 'agents reader', role: 'admin', scopes: ['agents:read'] } });
    readerKey = res.json<{ secret: string }>().secret;
  });
  afterAll(() => t.close());

  it('shows header names with a redacted value to viewers and agents:read keys', async () => {
    const id = await createWithSecret();
    for (const key of [org.keys.viewer, readerKey, org.keys.owner]) {
      const one = await t.as(key, { method: 'GET', url: `/v1/agents/${id}` });
      expect(one.statusCode).toBe(200);
      expect(one.body).not.toContain('sk-live');
      expect(one.json().tools[0].headers).toEqual({ Authorization: '[redacted]', 'X-Tenant': '[redacted]' });
      const list = await t.as(key, { method: 'GET', url: '/v1/agents?limit=100' });
      expect(list.body).not.toContain('sk-live');
    }
  });

  it('keeps no header value in plain text in the database', async () => {
    const id = await createWithSecret();
    const tools = await storedTools(id);
    expect(JSON.stringify(tools)).not.toContain('sk-live');
    expect(JSON.stringify(tools)).not.toContain('acme');
    const headers = tools[0]!.type === 'http' ? tools[0]!.headers! : {};
    expect(headers.Authorization).toMatch(/^enc:v1:[0-9a-f]{8}:[A-Za-z0-9+/]+=*$/);
    // A fresh IV per value: the same plaintext never gives the same ciphertext.
    const again = await storedTools(await createWithSecret());
    expect(again[0]!.type === 'http' && again[0]!.headers!.Authorization).not.toBe(headers.Authorization);
    expect(await headersForCall(id)).toEqual({ Authorization: SECRET, 'X-Tenant': 'acme' });
  });

  it('keeps a stored header value when the redaction marker is sent back, and replaces it when a new value is sent', async () => {
    const id = await createWithSecret();
    const fetched = (await t.as(org.keys.viewer, { method: 'GET', url: `/v1/agents/${id}` })).json();
    const edited = fetched.tools.map((tool: Record<string, unknown>) => ({ ...tool, description: 'Finds an order by id' }));
    const patched = await t.as(org.keys.member, { method: 'PATCH', url: `/v1/agents/${id}`, payload: { tools: edited } });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().tools[0]).toMatchObject({ description: 'Finds an order by id', headers: { Authorization: '[redacted]', 'X-Tenant': '[redacted]' } });
    expect(await headersForCall(id)).toEqual({ Authorization: SECRET, 'X-Tenant': 'acme' });

    const rotated = edited.map((tool: Record<string, unknown>) => ({ ...tool, headers: { Authorization: 'Bearer rotated', 'X-Tenant': '[redacted]' } }));
    expect((await t.as(org.keys.member, { method: 'PATCH', url: `/v1/agents/${id}`, payload: { tools: rotated } })).statusCode).toBe(200);
    expect(await headersForCall(id)).toEqual({ Authorization: 'Bearer rotated', 'X-Tenant': 'acme' });
  });

  it('refuses the redaction marker for a header that has no stored value', async () => {
    const id = await createWithSecret();
    const res = await t.as(org.keys.member, {
      method: 'PATCH',
      url: `/v1/agents/${id}`,
      payload: { tools: [httpTool('https://api.example.com/orders', { headers: { Authorization: '[redacted]', 'X-New': '[redacted]' } })] },
    });
    const error = expectError(res, 400, 'invalid_request');
    expect(error.details).toEqual({ field: 'tools.0.headers.X-New' });
    expect(await headersForCall(id)).toEqual({ Authorization: SECRET, 'X-Tenant': 'acme' });
    const created = await t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'Marker', tools: [httpTool('https://api.example.com/', { headers: { Authorization: '[redacted]' } })] } });
    expect(expectError(created, 400, 'invalid_request').details).toEqual({ field: 'tools.0.headers.Authorization' });
  });

  it('reads rows written in plain text before encryption, and seals them once', async () => {
    const id = await createWithSecret();
    const legacy = [{ ...httpTool('https://api.example.com/orders', { headers: { Authorization: 'Bearer legacy-plain' } }), method: 'POST', timeoutMs: 5000 }] as AgentTool[];
    await t.database.db.update(agents).set({ tools: legacy }).where(eq(agents.id, id));

    const shown = await t.as(org.keys.viewer, { method: 'GET', url: `/v1/agents/${id}` });
    expect(shown.body).not.toContain('legacy-plain');
    expect(await headersForCall(id)).toEqual({ Authorization: 'Bearer legacy-plain' });

    const first = await t.app.agents.sealStoredSecrets();
    expect(first.sealed).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(await storedTools(id))).not.toContain('legacy-plain');
    expect(await headersForCall(id)).toEqual({ Authorization: 'Bearer legacy-plain' });
    expect(await t.app.agents.sealStoredSecrets()).toEqual({ sealed: 0, unreadable: 0, foreignKeyIds: [] });
  });
});

describe('tool secrets and the server key', () => {
  const keyA = randomBytes(32);
  const keyB = randomBytes(32);
  let t: TestApp;
  let org: TestOrg;
  let url: string;

  beforeAll(async () => {
    t = await testApp({ SECRETS_KEY: keyB.toString('base64') });
    org = await t.createOrg();
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `${address.replace('http', 'ws')}/twilio/media`;
  });
  afterAll(() => t.close());

  // An agent whose header was sealed by a server with key A (another node, or before the key was lost).
  const agentSealedElsewhere = async (): Promise<string> => {
    const res = await t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'Elsewhere', voice: { provider: 'echo', voiceId: 'echo' }, tools: [httpTool('https://api.example.com/orders')] } });
    const id = res.json<{ id: string }>().id;
    const tools = [{ ...(await t.app.agents.get(org.id, id)).tools[0]!, headers: { Authorization: new SecretBox(keyA).seal(SECRET) } }] as AgentTool[];
    await t.database.db.update(agents).set({ tools }).where(eq(agents.id, id));
    return id;
  };

  it('encrypts with SECRETS_KEY and names it in the stored value', async () => {
    const res = await t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'Keyed', tools: [httpTool('https://api.example.com/', { headers: { Authorization: SECRET } })] } });
    const [row] = await t.database.db.select().from(agents).where(eq(agents.id, res.json<{ id: string }>().id));
    const stored = row!.tools[0]!.type === 'http' ? row!.tools[0]!.headers!.Authorization! : '';
    expect(SecretBox.keyIdOf(stored)).toBe(keyIdOf(keyB));
    expect(new SecretBox(keyB).open(stored)).toBe(SECRET);
  });

  it('refuses to open a secret sealed with another key, naming both keys and SECRETS_KEY', async () => {
    const id = await agentSealedElsewhere();
    const err = await t.app.agents.forCall(org.id, id).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(SecretKeyError);
    expect((err as Error).message).toBe(
      `agent ${id}, tool lookup, header Authorization: a stored secret was encrypted with key ${keyIdOf(keyA)}, but this server's key is ${keyIdOf(keyB)}: set SECRETS_KEY to the key that encrypted it`,
    );
    // The API never needs the key: it shows the agent as always.
    const shown = await t.as(org.keys.viewer, { method: 'GET', url: `/v1/agents/${id}` });
    expect(shown.json().tools[0].headers).toEqual({ Authorization: '[redacted]' });
    const sweep = await t.app.agents.sealStoredSecrets();
    expect(sweep).toMatchObject({ sealed: 0, unreadable: expect.any(Number), foreignKeyIds: [keyIdOf(keyA)] });
  });

  it('ends a call whose agent secrets cannot be opened, with the reason on the call record', async () => {
    const id = await agentSealedElsewhere();
    const res = await t.as(org.keys.member, { method: 'POST', url: `/v1/agents/${id}/test-calls` });
    const { callId, token } = res.json<{ callId: string; token: string }>();
    const client = new TwilioStreamClient({ url, customParameters: { token } });
    await client.connect();
    expect((await client.closed).code).toBe(1008);
    const call = await t.app.calls.get(org.id, callId);
    expect(call).toMatchObject({ endReason: 'error', endDetail: expect.stringContaining('set SECRETS_KEY to the key that encrypted it') });
  });

  it('heals an unreadable secret when a new value is sent', async () => {
    const id = await agentSealedElsewhere();
    const patched = await t.as(org.keys.member, { method: 'PATCH', url: `/v1/agents/${id}`, payload: { tools: [httpTool('https://api.example.com/orders', { headers: { Authorization: 'Bearer fresh' } })] } });
    expect(patched.statusCode).toBe(200);
    const agent = await t.app.agents.forCall(org.id, id);
    expect(agent.tools[0]).toMatchObject({ headers: { Authorization: 'Bearer fresh' } });
  });
});
