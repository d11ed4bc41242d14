import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HTTPMethods, InjectOptions, LightMyRequestResponse } from 'fastify';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { expectError, expectErrorShape, type ApiError } from '../helpers/errors.js';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio.js';

/** The fields an error names: schema failures list `details[].field`, service checks give `details.field`. */
function fieldsOf(error: ApiError): string[] {
  if (Array.isArray(error.details)) return (error.details as { field: string }[]).map((d) => d.field);
  const field = (error.details as { field?: string } | undefined)?.field;
  return field ? [field] : [];
}

/** A small deterministic PRNG (mulberry32), so a failing fuzz case can be replayed from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20_240_611);
const FUZZ_CASES = Number(process.env.FUZZ_CASES ?? 200);

// Real field names and values, so random bodies get past the first schema check now and then.
const FIELD_NAMES = [
  'name', 'systemPrompt', 'firstMessage', 'language', 'variables', 'voice', 'stt', 'llm', 'interruption', 'maxDurationSeconds',
  'silenceTimeoutSeconds', 'voicemail', 'tools', 'provider', 'voiceId', 'speakerId', 'speed', 'model', 'endpointingMs', 'temperature',
  'maxTokens', 'fallbacks', 'enabled', 'minSpeechMs', 'action', 'message', 'type', 'url', 'method', 'headers', 'parameters', 'timeoutMs',
  'fillerMessage', 'description', 'properties', 'required', 'items', '$ref', '$id', 'id', 'organizationId', 'createdAt', '', 'x',
];
const STRINGS = [
  '', 'a', 'piper', 'echo', 'elevenlabs', 'deepgram', 'openai', 'gpt-4o-mini', 'builtin', 'http', 'end_call', 'transfer_call', 'object',
  'string', 'nope', 'hangup', 'leave_message', 'POST', 'https://example.test/hook', 'http://example.test', 'ftp://example.test/x', 'a:b',
  '{{', '}}', '{{ok}}', '{{ 1x }}', 'en-US', 'x'.repeat(3000), 'a\u0000b', '\ud800', 'é', '😀', '#/nope', 'agt_01jd5z3k8m0000000000000000',
];
const NUMBERS = [0, -1, 1, 0.5, 2, 10, 15, 3600, 14_400, 100_000, 2 ** 53, -(2 ** 31), 1e308, -1e-308];

const VALID_AGENT = {
  name: 'Fuzz',
  systemPrompt: 'You help {{customer}}.',
  voice: { provider: 'piper', voiceId: 'en_US-lessac-medium', speed: 1 },
  llm: { provider: 'openai', model: 'gpt-4o-mini', temperature: 0.7, fallbacks: [] },
  voicemail: { action: 'leave_message', message: 'Call us back' },
  tools: [
    { type: 'builtin', name: 'end_call' },
    { type: 'http', name: 'lookup', description: 'Finds an order', url: 'https://example.test/orders', parameters: { type: 'object', properties: { id: { type: 'string' } } } },
  ],
};

function fuzzer(random: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const randomText = () => Array.from({ length: Math.floor(random() * 12) }, () => String.fromCharCode(Math.floor(random() * 0x10000))).join('');

  function value(depth: number): unknown {
    const r = random();
    if (depth > 3 || r < 0.15) return pick([null, true, false]);
    if (r < 0.35) return random() < 0.7 ? pick(STRINGS) : randomText();
    if (r < 0.5) return random() < 0.8 ? pick(NUMBERS) : (random() - 0.5) * 1e6;
    if (r < 0.65) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
    return object(depth + 1);
  }

  function object(depth: number): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    const n = Math.floor(random() * 5);
    for (let i = 0; i < n; i++) o[random() < 0.8 ? pick(FIELD_NAMES) : randomText()] = value(depth);
    return o;
  }

  /** A value of the same JSON type, which passes type checks and so reaches range, format and service checks. */
  function sameKind(like: unknown): unknown {
    if (typeof like === 'string') return random() < 0.6 ? pick(STRINGS) : randomText();
    if (typeof like === 'number') return random() < 0.8 ? pick(NUMBERS) : (random() - 0.5) * 1e6;
    if (typeof like === 'boolean') return random() < 0.5;
    return value(2);
  }

  /** A copy of a valid agent with one value somewhere replaced, so the later, deeper checks get exercised. */
  function mutatedAgent(): unknown {
    const copy = structuredClone(VALID_AGENT) as Record<string, unknown>;
    let node: Record<string, unknown> = copy;
    for (;;) {
      const key = pick(Object.keys(node));
      const child = node[key];
      if (child && typeof child === 'object' && random() < 0.6 && Object.keys(child).length > 0) {
        node = child as Record<string, unknown>;
        continue;
      }
      node[random() < 0.8 ? key : pick(FIELD_NAMES)] = random() < 0.6 ? sameKind(child) : value(2);
      return copy;
    }
  }

  return () => {
    const r = random();
    if (r < 0.45) return mutatedAgent();
    if (r < 0.9) return object(0);
    return value(0);
  };
}

describe('request input', () => {
  /** The carrier behind the phone-number routes: bad input must never reach it. */
  let fake: FakeTwilio;
  let t: TestApp;
  /** Only ever sent bad input: at the end it must look as if nothing had been sent. */
  let org: TestOrg;
  /** Sent valid and random input, which may create and change its agents. */
  let lab: TestOrg;

  beforeAll(async () => {
    // The fuzz loop alone sends hundreds of requests with one key; the rate limit is not under test here.
    fake = await startFakeTwilio();
    t = await testApp({ RATE_LIMIT_PER_MINUTE: '1000000', TWILIO_ACCOUNT_SID: fake.accountSid, TWILIO_AUTH_TOKEN: fake.authToken, TWILIO_BASE_URL: fake.baseUrl });
    org = await t.createOrg('Pristine');
    lab = await t.createOrg('Lab');
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  /** Every request goes through here: none may ever answer 5xx, and every 4xx has the error shape. */
  async function send(opts: InjectOptions & { method: HTTPMethods; url: string }): Promise<LightMyRequestResponse> {
    const res = await t.app.inject(opts);
    expect(res.statusCode, `${opts.method} ${opts.url} answered ${res.statusCode}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
    if (res.statusCode >= 400) expectErrorShape(res);
    return res;
  }
  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

  describe('bad input', () => {
    let existingAgentId: string;
    let existingNumberId: string;
    let agentsBefore: string;
    let keysBefore: object[];
    let numbersBefore: string;
    let twilioRequestsBefore: number;
    const ownedSid = `PN${'ab'.repeat(16)}`;

    const agentList = async () => (await send({ method: 'GET', url: '/v1/agents?limit=100', headers: bearer(org.keys.owner) })).body;
    // Authenticating stamps lastUsedAt on the keys this file uses; that is not a change the requests made.
    const keyList = async () =>
      (await send({ method: 'GET', url: '/v1/api-keys?limit=100&includeRevoked=true', headers: bearer(org.keys.owner) }))
        .json<{ data: { lastUsedAt?: string | null }[] }>()
        .data.map(({ lastUsedAt: _lastUsedAt, ...key }) => key);

    const numberList = async () => (await send({ method: 'GET', url: '/v1/phone-numbers?limit=100', headers: bearer(org.keys.owner) })).body;

    beforeAll(async () => {
      const res = await t.as(org.keys.owner, { method: 'POST', url: '/v1/agents', payload: { name: 'Existing', tools: [{ type: 'builtin', name: 'end_call' }] } });
      existingAgentId = res.json<{ id: string }>().id;
      const bought = await t.as(org.keys.owner, { method: 'POST', url: '/v1/phone-numbers', payload: { phoneNumber: '+14155550101', agentId: existingAgentId } });
      existingNumberId = bought.json<{ id: string }>().id;
      // Owned at Twilio and importable: only the bad input itself may stop an import.
      fake.addOwnedNumber({ sid: ownedSid, phoneNumber: '+14155550199' });
      agentsBefore = await agentList();
      keysBefore = await keyList();
      numbersBefore = await numberList();
      twilioRequestsBefore = fake.requests.length;
    });

    interface Endpoint {
      name: string;
      method: HTTPMethods;
      url: () => string;
      headers: () => Record<string, string>;
      /** Wrong types and the field the error must name. */
      wrongTypes: [body: object, field: string][];
      /** A body with one unknown field and the field the error must name. */
      unknownFields: [body: object, field: string][];
      /** An otherwise valid body carrying `text`, and the field it is in. */
      withText: [(text: string) => object, field: string];
    }

    const endpoints: Endpoint[] = [
      {
        name: 'POST /v1/agents',
        method: 'POST',
        url: () => '/v1/agents',
        headers: () => bearer(org.keys.member),
        wrongTypes: [
          [{ name: 5 }, 'name'],
          [{ name: 'A', maxDurationSeconds: '10' }, 'maxDurationSeconds'],
          [{ name: 'A', llm: { provider: 'openai', model: 'gpt-4o-mini', temperature: 'hot' } }, 'llm.temperature'],
          [{ name: 'A', variables: ['x'] }, 'variables'],
          [{ name: 'A', tools: { type: 'builtin', name: 'end_call' } }, 'tools'],
        ],
        withText: [(text) => ({ name: text }), 'name'],
        unknownFields: [
          [{ name: 'A', nmae: 'typo' }, 'nmae'],
          [{ name: 'A', voice: { provider: 'piper', voiceId: 'v', speed: 1, pitch: 2 } }, 'voice.pitch'],
          [{ name: 'A', llm: { provider: 'openai', model: 'm', temperature: 1, fallbacks: [], topP: 1 } }, 'llm.topP'],
          [{ name: 'A', tools: [{ type: 'builtin', name: 'end_call', when: 'always' }] }, 'tools.0.when'],
        ],
      },
      {
        name: 'PATCH /v1/agents/:id',
        method: 'PATCH',
        url: () => `/v1/agents/${existingAgentId}`,
        headers: () => bearer(org.keys.member),
        wrongTypes: [
          [{ name: 5 }, 'name'],
          [{ maxDurationSeconds: '10' }, 'maxDurationSeconds'],
          [{ llm: { provider: 'openai', model: 'gpt-4o-mini', temperature: 'hot' } }, 'llm.temperature'],
          [{ interruption: { enabled: 'yes', minSpeechMs: 100 } }, 'interruption.enabled'],
        ],
        withText: [(text) => ({ variables: { customer: text } }), 'variables.customer'],
        unknownFields: [
          [{ nmae: 'typo' }, 'nmae'],
          [{ voice: { provider: 'piper', voiceId: 'v', speed: 1, pitch: 2 } }, 'voice.pitch'],
          [{ llm: { provider: 'openai', model: 'm', temperature: 1, fallbacks: [], topP: 1 } }, 'llm.topP'],
          [{ tools: [{ type: 'http', name: 'x', description: 'd', url: 'https://example.test', parameters: { type: 'object' }, retries: 3 }] }, 'tools.0.retries'],
        ],
      },
      {
        name: 'POST /v1/api-keys',
        method: 'POST',
        url: () => '/v1/api-keys',
        headers: () => bearer(org.keys.owner),
        wrongTypes: [
          [{ name: 5 }, 'name'],
          [{ name: 'k', scopes: 'agents' }, 'scopes'],
          [{ name: 'k', role: 1 }, 'role'],
          [{ name: 'k', expiresAt: 1_700_000_000 }, 'expiresAt'],
        ],
        withText: [(text) => ({ name: text }), 'name'],
        unknownFields: [[{ name: 'k', permissions: ['*'] }, 'permissions']],
      },
      {
        name: 'POST /auth/login',
        method: 'POST',
        url: () => '/auth/login',
        headers: () => ({}),
        wrongTypes: [
          [{ email: 5, password: 'x' }, 'email'],
          [{ email: 'someone@example.test', password: 123 }, 'password'],
          [{ email: 'not an email', password: 'x' }, 'email'],
        ],
        withText: [(text) => ({ email: 'someone@example.test', password: text }), 'password'],
        unknownFields: [[{ email: 'someone@example.test', password: 'x', remember: true }, 'remember']],
      },
      {
        name: 'POST /v1/phone-numbers',
        method: 'POST',
        url: () => '/v1/phone-numbers',
        headers: () => bearer(org.keys.admin),
        wrongTypes: [
          [{ phoneNumber: 14155550102 }, 'phoneNumber'],
          [{ phoneNumber: '+14155550102', agentId: 5 }, 'agentId'],
          [{ phoneNumber: '+14155550102', friendlyName: ['Main'] }, 'friendlyName'],
        ],
        withText: [(text) => ({ phoneNumber: '+14155550102', friendlyName: text }), 'friendlyName'],
        unknownFields: [
          [{ phoneNumber: '+14155550102', price: 1 }, 'price'],
          [{ phoneNumber: '+14155550102', voiceUrl: 'https://elsewhere.example/voice' }, 'voiceUrl'],
        ],
      },
      {
        name: 'POST /v1/phone-numbers/import',
        method: 'POST',
        url: () => '/v1/phone-numbers/import',
        headers: () => bearer(org.keys.admin),
        wrongTypes: [
          [{ providerSid: 5 }, 'providerSid'],
          [{ providerSid: ownedSid, agentId: true }, 'agentId'],
        ],
        withText: [(text) => ({ providerSid: ownedSid, friendlyName: text }), 'friendlyName'],
        unknownFields: [[{ providerSid: ownedSid, statusCallback: 'https://elsewhere.example/status' }, 'statusCallback']],
      },
      {
        name: 'PATCH /v1/phone-numbers/:id',
        method: 'PATCH',
        url: () => `/v1/phone-numbers/${existingNumberId}`,
        headers: () => bearer(org.keys.member),
        wrongTypes: [
          [{ agentId: 5 }, 'agentId'],
          [{ friendlyName: 5 }, 'friendlyName'],
        ],
        withText: [(text) => ({ friendlyName: text }), 'friendlyName'],
        unknownFields: [[{ friendlyName: 'Main', phoneNumber: '+14155550102' }, 'phoneNumber']],
      },
    ];

    describe.each(endpoints)('$name', (endpoint) => {
      const json = (payload: string | Buffer, contentType = 'application/json') =>
        send({ method: endpoint.method, url: endpoint.url(), headers: { ...endpoint.headers(), 'content-type': contentType }, payload });

      it.each(['{"name": ', '{name: "A"}', '{"name": "A",}', "{'name': 'A'}", ''])('answers 400 invalid_json to the malformed body %j', async (body) => {
        expectError(await json(body), 400, 'invalid_json');
      });

      it.each(endpoint.wrongTypes.map(([body, field]) => ({ body, field })))(
        'answers 400 validation_failed naming $field, of the wrong type in $body',
        async ({ body, field }) => {
          const error = expectError(await json(JSON.stringify(body)), 400, 'validation_failed');
          expect(fieldsOf(error)).toContain(field);
        },
      );

      it.each(endpoint.unknownFields.map(([body, field]) => ({ body, field })))(
        'answers 400 validation_failed naming the unknown field $field in $body',
        async ({ body, field }) => {
          const error = expectError(await json(JSON.stringify(body)), 400, 'validation_failed');
          expect(fieldsOf(error)).toContain(field);
        },
      );

      it('answers 413 body_too_large to a body over 1 MiB', async () => {
        const body = JSON.stringify({ name: 'A', systemPrompt: 'x'.repeat(1024 * 1024) });
        expectError(await json(body), 413, 'body_too_large');
      });

      it('answers 415 unsupported_media_type to a text/plain body, even one that is JSON', async () => {
        expectError(await json(JSON.stringify({ name: 'A' }), 'text/plain'), 415, 'unsupported_media_type');
      });

      it('answers 415 unsupported_media_type to a body without a content type', async () => {
        const res = await send({ method: endpoint.method, url: endpoint.url(), headers: endpoint.headers(), payload: Buffer.from('{"name":"A"}') });
        expectError(res, 415, 'unsupported_media_type');
      });

      it.each([
        ['a NUL character', 'A\u0000B'],
        ['an unpaired surrogate', 'A\ud800B'],
      ])('answers 400 validation_failed naming the field to text with %s, which Postgres cannot store', async (_what, text) => {
        const [body, field] = endpoint.withText;
        const error = expectError(await json(JSON.stringify(body(text))), 400, 'validation_failed');
        expect(fieldsOf(error)).toEqual([field]);
      });
    });

    describe('ids in the path', () => {
      const badIds: [string, string][] = [
        ['a number', '123'],
        ['the wrong alphabet', `agt_${'ILOU'.repeat(7).slice(0, 26)}`],
        ['the wrong prefix', 'key_01jd5z3k8m0000000000000000'],
        ['a path traversal', '..%2F'],
        ['a broken escape', '%zz'],
        ['5000 characters', `agt_${'a'.repeat(4996)}`],
      ];
      const methods: [HTTPMethods, object | undefined][] = [['GET', undefined], ['PATCH', { name: 'renamed' }], ['DELETE', undefined]];

      it.each(badIds)('answers 400 or 404 with the error shape to %s', async (_what, id) => {
        for (const [method, payload] of methods) {
          const res = await send({ method, url: `/v1/agents/${id}`, headers: bearer(org.keys.owner), ...(payload ? { payload } : {}) });
          expect([400, 404], `${method} ${id.slice(0, 40)}: ${res.statusCode} ${res.body.slice(0, 200)}`).toContain(res.statusCode);
          expectErrorShape(res);
        }
      });

      it.each(badIds)('answers 400 or 404 with the error shape to %s as a phone number id', async (_what, agentShaped) => {
        const id = agentShaped.replace(/^agt_/, 'pn_');
        for (const [method, payload] of [...methods.filter(([m]) => m !== 'PATCH'), ['PATCH', { friendlyName: 'renamed' }] as const]) {
          const res = await send({ method, url: `/v1/phone-numbers/${id}`, headers: bearer(org.keys.owner), ...(payload ? { payload } : {}) });
          expect([400, 404], `${method} ${id.slice(0, 40)}: ${res.statusCode} ${res.body.slice(0, 200)}`).toContain(res.statusCode);
          expectErrorShape(res);
        }
      });
    });

    describe('agent settings that cannot work', () => {
      const http = (over: object = {}) => ({ type: 'http', name: 'lookup', description: 'Finds an order', url: 'https://example.test/orders', parameters: { type: 'object' }, ...over });

      const unworkable: [what: string, body: object, field: string][] = [
        ['an unknown voice provider', { voice: { provider: 'acme', voiceId: 'v', speed: 1 } }, 'voice.provider'],
        ['an unknown LLM provider', { llm: { provider: 'acme', model: 'm', temperature: 1, fallbacks: [] } }, 'llm.provider'],
        ['an unknown STT provider', { stt: { provider: 'acme', model: 'm', endpointingMs: 400 } }, 'stt.provider'],
        ['an ftp:// tool URL', { tools: [http({ url: 'ftp://example.test/orders' })] }, 'tools.0.url'],
        ['a negative maxDurationSeconds', { maxDurationSeconds: -5 }, 'maxDurationSeconds'],
        ['a negative silenceTimeoutSeconds', { silenceTimeoutSeconds: -1 }, 'silenceTimeoutSeconds'],
        ['a negative endpointingMs', { stt: { provider: 'deepgram', model: 'nova-3', endpointingMs: -100 } }, 'stt.endpointingMs'],
        ['a negative minSpeechMs', { interruption: { enabled: true, minSpeechMs: -1 } }, 'interruption.minSpeechMs'],
        ['a negative tool timeout', { tools: [http({ timeoutMs: -1 })] }, 'tools.0.timeoutMs'],
        ['two tools with one name', { tools: [{ type: 'builtin', name: 'end_call' }, { type: 'builtin', name: 'end_call' }] }, 'tools.1'],
        ['leave_message without a message', { voicemail: { action: 'leave_message' } }, 'voicemail.message'],
        ['an unclosed {{ in the system prompt', { systemPrompt: 'Hello {{ customer' }, 'systemPrompt'],
        ['a malformed placeholder in the first message', { firstMessage: 'Hi {{ 1x }}' }, 'firstMessage'],
        ['tool parameters that are not JSON Schema', { tools: [http({ parameters: { type: 'object', properties: { a: { type: 'nope' } } } })] }, 'tools.0.parameters'],
        ['tool parameters that are not an object schema', { tools: [http({ parameters: { type: 'string' } })] }, 'tools.0.parameters'],
        ['tool parameters with a dangling $ref', { tools: [http({ parameters: { type: 'object', properties: { a: { $ref: '#/nope' } } } })] }, 'tools.0.parameters'],
        ['a variable whose name is not an identifier', { variables: { '1x': 'a' } }, 'variables.1x'],
        ['a variable that is not text', { variables: { 'not a name': { nested: true } } }, 'variables.not a name'],
        ['a tool header with an invalid name', { tools: [http({ headers: { 'Bad Header:': 'x' } })] }, 'tools.0.headers.Bad Header:'],
        ['an LLM fallback that repeats the primary', { llm: { provider: 'openai', model: 'm', temperature: 1, fallbacks: [{ provider: 'openai', model: 'm' }] } }, 'llm.fallbacks.0'],
      ];

      it.each(unworkable)('refuses creating an agent with %s, naming the field', async (_what, body, field) => {
        const res = await send({ method: 'POST', url: '/v1/agents', headers: bearer(org.keys.member), payload: { name: 'Unworkable', ...body } });
        expect(res.statusCode, res.body).toBe(400);
        expect(fieldsOf(expectErrorShape(res))).toContain(field);
      });

      it.each(unworkable)('refuses changing an agent to have %s, naming the field', async (_what, body, field) => {
        const res = await send({ method: 'PATCH', url: `/v1/agents/${existingAgentId}`, headers: bearer(org.keys.member), payload: body });
        expect(res.statusCode, res.body).toBe(400);
        expect(fieldsOf(expectErrorShape(res))).toContain(field);
      });

      it('refuses tool parameters nested thousands of levels deep', async () => {
        const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
        const tool = `{"type":"http","name":"deep","description":"d","url":"https://example.test","parameters":{"type":"object","x":${deep}}}`;
        const res = await send({
          method: 'POST',
          url: '/v1/agents',
          headers: { ...bearer(org.keys.member), 'content-type': 'application/json' },
          payload: `{"name":"Deep","tools":[${tool}]}`,
        });
        expect(fieldsOf(expectError(res, 400, 'validation_failed'))[0]).toMatch(/^tools\.0\.parameters\.x/);
      });

      it('refuses a PATCH with no fields', async () => {
        const res = await send({ method: 'PATCH', url: `/v1/agents/${existingAgentId}`, headers: bearer(org.keys.member), payload: {} });
        expectError(res, 400, 'validation_failed');
      });
    });

    // Runs after everything above: the organization must look as if none of it had been sent.
    describe('NUL characters outside the body', () => {
      it('answers 400 naming the parameter to a NUL character in a query string', async () => {
        const error = expectError(await send({ method: 'GET', url: '/v1/calls?campaignId=%00', headers: bearer(org.keys.owner) }), 400, 'validation_failed');
        expect(error.details).toEqual([expect.objectContaining({ location: 'querystring', field: 'campaignId' })]);
      });

      it('answers 400 naming the parameter to a NUL character in a path parameter', async () => {
        const error = expectError(await send({ method: 'GET', url: '/v1/agents/agt_%00', headers: bearer(org.keys.owner) }), 400, 'validation_failed');
        expect(fieldsOf(error)).toEqual(['id']);
      });
    });

    describe('afterwards', () => {
      it("leaves the organization's agents exactly as they were", async () => {
        expect(await agentList()).toBe(agentsBefore);
      });

      it("leaves the organization's API keys exactly as they were", async () => {
        expect(await keyList()).toEqual(keysBefore);
      });

      it("leaves the organization's phone numbers exactly as they were", async () => {
        expect(await numberList()).toBe(numbersBefore);
      });

      it('never reached Twilio', () => {
        expect(fake.requests.slice(twilioRequestsBefore)).toEqual([]);
      });
    });
  });

  // Valid and random input, against the lab organization.
  describe('input at the edges', () => {
    let agentId: string;

    beforeAll(async () => {
      agentId = (await t.as(lab.keys.owner, { method: 'POST', url: '/v1/agents', payload: VALID_AGENT })).json<{ id: string }>().id;
    });

    it.each(['http://example.test/orders', 'https://example.test/orders'])('accepts a tool URL of %s', async (url) => {
      const tool = { type: 'http', name: 'lookup', description: 'Finds an order', url, parameters: { type: 'object' } };
      const res = await t.as(lab.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'Tools', tools: [tool] } });
      expect(res.statusCode, res.body).toBe(201);
    });

    it('accepts the same tool schema, $id and all, on two agents', async () => {
      const tool = { type: 'http', name: 'lookup', description: 'd', url: 'https://example.test', parameters: { $id: 'order', type: 'object', properties: { id: { $id: 'order-id', type: 'string' } } } };
      for (let i = 0; i < 2; i++) {
        const res = await t.as(lab.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: `Schema ${i}`, tools: [tool] } });
        expect(res.statusCode, res.body).toBe(201);
      }
    });

    describe(`fuzz (FUZZ_SEED=${FUZZ_SEED})`, () => {
      async function fuzz(method: HTTPMethods, url: string, seed: number) {
        const next = fuzzer(prng(seed));
        const statuses = new Map<number, number>();
        for (let i = 0; i < FUZZ_CASES; i++) {
          const payload = JSON.stringify(next());
          const res = await t.as(lab.keys.member, { method, url, payload, headers: { 'content-type': 'application/json' } });
          const context = `case ${i}: ${method} ${url} ${payload.slice(0, 400)} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
          expect(res.statusCode, context).toBeLessThan(500);
          expect(res.statusCode, context).toBeGreaterThanOrEqual(200);
          if (res.statusCode >= 400) expectErrorShape(res);
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        }
        return statuses;
      }

      it(`answers ${FUZZ_CASES} random bodies to POST /v1/agents with 2xx or a well-formed 4xx`, async () => {
        const statuses = await fuzz('POST', '/v1/agents', FUZZ_SEED);
        // A fuzzer that never gets past the schema would prove little.
        expect(statuses.get(201) ?? 0).toBeGreaterThan(0);
      });

      it(`answers ${FUZZ_CASES} random bodies to PATCH /v1/agents/:id with 2xx or a well-formed 4xx`, async () => {
        const statuses = await fuzz('PATCH', `/v1/agents/${agentId}`, FUZZ_SEED + 1);
        expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
      });
    });
  });

  // Every route the app serves, not only the ones above: random path parameters and query strings must
  // never reach the database unchecked, and every status must be one the OpenAPI document promises. Some
  // random requests are valid (a search with defaults), so this runs in the lab organization.
  describe(`query strings and path parameters of every route (FUZZ_SEED=${FUZZ_SEED})`, () => {
    type Operation = { responses: Record<string, unknown> };
    let doc: { paths: Record<string, Record<string, Operation>> };
    beforeAll(async () => {
      doc = (await send({ method: 'GET', url: '/docs/json' })).json();
    });

    const ROUTE_CASES = Number(process.env.FUZZ_ROUTE_CASES ?? 24);
    const NASTY = [
      '%00', 'a%00b', '%ff', '%zz', '%', '%C0%AF', '..%2F..%2Fetc', '\u0000', '%F0%9F%98%80', '%ED%A0%80', '-1', '0', '1e309',
      '99999999999999999999', 'NaN', 'true', '[]', '{}', 'null', "'; drop table agents; --", 'a'.repeat(5000), '%20', '',
      '2024-13-45T99:99:99Z', 'agt_01jd5z3k8m0000000000000000', 'call_01jd5z3k8m0000000000000000', 'key_01jd5z3k8m0000000000000000',
    ];
    const QUERY_KEYS = ['limit', 'cursor', 'status', 'direction', 'agentId', 'campaignId', 'phoneNumberId', 'createdAfter', 'createdBefore', 'includeRevoked', 'action', 'country', 'areaCode', 'contains', 'callId', 'x', '', '__proto__', 'constructor'];

    function fuzzRequest(random: () => number, url: string): string {
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
      // Random bytes, percent-encoded: invalid UTF-8, control characters and reserved characters included.
      const randomText = () => Array.from({ length: 1 + Math.floor(random() * 12) }, () => `%${Math.floor(random() * 256).toString(16).padStart(2, '0')}`).join('');
      const path = url.replace(/:\w+/g, () => (random() < 0.75 ? pick(NASTY) : randomText()));
      const pairs = Array.from({ length: Math.floor(random() * 4) }, () => `${pick(QUERY_KEYS)}=${random() < 0.7 ? pick(NASTY) : randomText()}`);
      return pairs.length > 0 ? `${path}?${pairs.join('&')}` : path;
    }

    const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

    it('answers random path parameters and query strings on every route with a documented status, never a 5xx', async () => {
      const random = prng(FUZZ_SEED + 7);
      // The event stream never ends, so inject() would wait for ever on a valid request; its input is
      // checked case by case in event-stream.test.ts instead.
      const routes = t.app.routeTable.filter((r) => !r.url.startsWith('/docs') && r.url !== '/twilio/media' && r.url !== '/v1/events/stream');
      expect(routes.length).toBeGreaterThan(30);
      const undocumented: string[] = [];
      for (const route of routes) {
        const method = route.method as HTTPMethods;
        for (let i = 0; i < ROUTE_CASES; i++) {
          const url = fuzzRequest(random, route.url);
          const withBody = method === 'POST' || method === 'PATCH' || method === 'PUT';
          const res = await send({ method, url, headers: bearer(lab.keys.owner), ...(withBody ? { payload: {} } : {}) });
          const operation = doc.paths[openApiPath(route.url)]?.[method.toLowerCase()];
          if (operation && !(String(res.statusCode) in operation.responses)) undocumented.push(`${method} ${route.url} -> ${res.statusCode} (${url.slice(0, 80)})`);
        }
      }
      expect(undocumented).toEqual([]);
    });
  });
});
