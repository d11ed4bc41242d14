import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';

describe('/v1/agents', () => {
  let t: TestApp;
  let org: TestOrg;
  const create = (payload: unknown) => t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: payload as object });

  beforeAll(async () => {
    t = await testApp();
    org = await t.createOrg();
  });
  afterAll(() => t.close());

  it('creates an agent from just a name, with working defaults', async () => {
    const res = await create({ name: 'Front desk' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({
      object: 'agent',
      name: 'Front desk',
      language: 'en-US',
      voice: { provider: 'piper', voiceId: 'en_US-lessac-medium', speed: 1 },
      stt: { provider: 'deepgram', model: 'nova-3', endpointingMs: 400 },
      turnDetection: { mode: 'adaptive', minSilenceMs: 250, maxSilenceMs: 900 },
      llm: { provider: 'openai', model: 'gpt-4o-mini', temperature: 0.7, fallbacks: [] },
      interruption: { enabled: true, minSpeechMs: 200 },
      maxDurationSeconds: 1800,
      silenceTimeoutSeconds: 15,
      voicemail: { action: 'hangup' },
      tools: [],
    });
    expect(res.json().id).toMatch(/^agt_[0-9a-z]{26}$/);
  });

  it('stores the full definition: prompt variables, voice, STT, LLM with fallbacks, interruption, voicemail and tools', async () => {
    const body = {
      name: 'Sales',
      systemPrompt: 'You sell for {{company}}. The caller is {{ first_name }}.',
      firstMessage: 'Hi {{first_name}}!',
      language: 'de-DE',
      variables: { company: 'Acme' },
      voice: { provider: 'elevenlabs', voiceId: '21m00Tcm4TlvDq8ikWAM', speed: 1.1 },
      stt: { provider: 'deepgram', model: 'nova-3', endpointingMs: 300 },
      llm: { provider: 'openai', model: 'llama3.1:8b', temperature: 0.2, maxTokens: 300, fallbacks: [{ provider: 'openai', model: 'gpt-4o-mini' }] },
      interruption: { enabled: true, minSpeechMs: 250 },
      maxDurationSeconds: 600,
      silenceTimeoutSeconds: 8,
      voicemail: { action: 'leave_message', message: 'Call us back at {{company}}.' },
      tools: [
        { type: 'builtin', name: 'end_call' },
        { type: 'http', name: 'lookup_order', description: 'Find an order', url: 'https://api.example.com/orders', parameters: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } },
      ],
    };
    const res = await create(body);
    expect(res.statusCode).toBe(201);
    const agent = res.json();
    expect(agent).toMatchObject({ ...body, tools: [body.tools[0], { ...body.tools[1], method: 'POST', timeoutMs: 5000 }] });
    expect(agent.promptVariables).toEqual(['company', 'first_name']);
    const fetched = await t.as(org.keys.viewer, { method: 'GET', url: `/v1/agents/${agent.id}` });
    expect(fetched.json()).toEqual(agent);
  });

  it('updates only the fields a PATCH names', async () => {
    const agent = (await create({ name: 'Before', systemPrompt: 'Keep me' })).json();
    const res = await t.as(org.keys.member, { method: 'PATCH', url: `/v1/agents/${agent.id}`, payload: { name: 'After', interruption: { enabled: false } } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: 'After', systemPrompt: 'Keep me', interruption: { enabled: false, minSpeechMs: 200 } });
    expect(new Date(res.json().updatedAt).getTime()).toBeGreaterThanOrEqual(new Date(agent.updatedAt).getTime());
  });

  it('refuses an empty PATCH', async () => {
    const agent = (await create({ name: 'Empty patch' })).json();
    const res = await t.as(org.keys.member, { method: 'PATCH', url: `/v1/agents/${agent.id}`, payload: {} });
    expect(res.statusCode).toBe(400);
  });

  it('refuses a PATCH that would leave the agent unworkable', async () => {
    const agent = (await create({ name: 'Voicemail' })).json();
    const res = await t.as(org.keys.member, { method: 'PATCH', url: `/v1/agents/${agent.id}`, payload: { voicemail: { action: 'leave_message' } } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details).toEqual({ field: 'voicemail.message' });
  });

  it('stores fixed turn detection, and fills the silences a partial setting leaves out', async () => {
    const res = await create({ name: 'Fixed', turnDetection: { mode: 'fixed' } });
    expect(res.statusCode).toBe(201);
    expect(res.json().turnDetection).toEqual({ mode: 'fixed', minSilenceMs: 250, maxSilenceMs: 900 });
  });

  it('refuses turn detection whose shortest silence is longer than its longest', async () => {
    const res = await create({ name: 'Backwards', turnDetection: { mode: 'adaptive', minSilenceMs: 1000, maxSilenceMs: 500 } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details).toEqual({ field: 'turnDetection.minSilenceMs' });
  });

  it('deletes an agent so that it is gone from get and list', async () => {
    const agent = (await create({ name: 'Doomed' })).json();
    expect((await t.as(org.keys.member, { method: 'DELETE', url: `/v1/agents/${agent.id}` })).statusCode).toBe(204);
    expect((await t.as(org.keys.viewer, { method: 'GET', url: `/v1/agents/${agent.id}` })).statusCode).toBe(404);
    const list = await t.as(org.keys.viewer, { method: 'GET', url: '/v1/agents?limit=100' });
    expect(list.json().data.map((a: { id: string }) => a.id)).not.toContain(agent.id);
    expect((await t.as(org.keys.member, { method: 'DELETE', url: `/v1/agents/${agent.id}` })).statusCode).toBe(404);
  });

  it('pages through agents newest first with cursors, each exactly once', async () => {
    const fresh = await t.createOrg('Paging');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await t.as(fresh.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: `A${i}` } })).json().id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/agents?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await t.as(fresh.keys.viewer, { method: 'GET', url })).json();
      expect(page.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.data.map((a: { id: string }) => a.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
  });

  it('rejects an HTTP tool URL that is not http or https', async () => {
    const res = await create({ name: 'FTP', tools: [{ type: 'http', name: 't', description: 'd', url: 'ftp://example.com/x', parameters: { type: 'object' } }] });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details).toEqual({ field: 'tools.0.url' });
  });

  it('rejects an LLM fallback that repeats the primary model', async () => {
    const res = await create({ name: 'Loop', llm: { provider: 'openai', model: 'm', fallbacks: [{ provider: 'openai', model: 'm' }] } });
    expect(res.statusCode).toBe(400);
  });
});
