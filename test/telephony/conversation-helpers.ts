import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { MediaWorkerPool } from '../../src/media/workers/media-worker-pool.js';
import { TwilioStreamClient, type StreamClientEvent } from '../../src/simulator/twilio-stream-client.js';
import type { CallEvent } from '../../src/calls/call-events.js';
import type { CallRow, CallTurnRow } from '../../src/calls/calls.table.js';
import { startFakeDeepgram, type FakeDeepgram, type FakeDeepgramOptions } from '../fakes/deepgram.js';
import { startFakeOpenAi, type FakeOpenAi, type FakeRespond } from '../fakes/openai.js';
import { writeTestPiperVoice } from '../fakes/piper-model.js';
import { startFakeElevenLabs, type FakeElevenLabs } from '../fakes/elevenlabs.js';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio.js';
import { freePort } from '../helpers/cli.js';
import type { TwilioOutbound } from '../../src/telephony/media-stream/twilio-protocol.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/audio');

/** A fixture's 8 kHz mu-law bytes. */
export const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(join(FIXTURES, name)));

/** A request the fake tool server received. */
export interface ToolRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * Everything an end-to-end conversation test runs on: the real app on a real socket, a real media worker
 * with Silero VAD and Piper on the test voice, and fake Deepgram/OpenAI servers behind the real SDKs.
 */
export interface ConversationRig {
  t: TestApp;
  org: TestOrg;
  pool: MediaWorkerPool;
  deepgram: FakeDeepgram;
  openai: FakeOpenAi;
  elevenlabs: FakeElevenLabs;
  /** The fake Twilio REST API, when the rig was started with `twilio: true`. */
  twilio: FakeTwilio | null;
  /** Where the app listens; also its PUBLIC_URL when Twilio is on (the fake posts webhooks there). */
  publicUrl: string;
  /** An HTTP endpoint for agents' tools; `toolDelayMs` slows it down. */
  toolUrl: string;
  toolRequests: ToolRequest[];
  setToolDelay(ms: number): void;
  events: CallEvent[];
  createAgent(fields: Record<string, unknown>): Promise<string>;
  /** Places an inbound call and connects its stream; `onEvent` observes the Twilio side (played frames, marks). */
  dial(agentId: string, opts?: { onEvent?: (e: StreamClientEvent) => void }): Promise<{ call: CallRow; client: TwilioStreamClient }>;
  /** Starts a test call through the API; the returned client is not connected yet. */
  testCall(agentId: string): Promise<{ callId: string; client: TwilioStreamClient }>;
  turns(callId: string): Promise<CallTurnRow[]>;
  /** Waits until `test` holds for the call's turns (they are written as the call goes). */
  waitForTurns(callId: string, test: (turns: CallTurnRow[]) => boolean, timeoutMs?: number): Promise<CallTurnRow[]>;
  waitForEnd(callId: string, timeoutMs?: number): Promise<CallRow>;
  close(): Promise<void>;
}

/** Starts the rig: fakes, a one-worker media pool with the test Piper voice, the app listening on a port. */
export async function startConversationRig(
  opts: {
    deepgram?: FakeDeepgramOptions;
    respond?: FakeRespond;
    twilio?: boolean;
    /** Default true: the rig's own tool server is on loopback. */
    allowPrivateTools?: boolean;
    /** More environment for the app (e.g. short call-finalization timings). */
    env?: Record<string, string>;
  } = {},
): Promise<ConversationRig> {
  const twilio = opts.twilio ? await startFakeTwilio() : null;
  const port = opts.twilio ? await freePort() : 0;
  const voicesDir = await mkdtemp(join(tmpdir(), 'vocelio-voices-'));
  await writeTestPiperVoice(voicesDir, 'test-voice');
  const deepgram = await startFakeDeepgram(opts.deepgram);
  const openai = await startFakeOpenAi({ apiKey: 'test-openai-key', respond: opts.respond });
  const elevenlabs = await startFakeElevenLabs();
  const toolRequests: ToolRequest[] = [];
  let toolDelayMs = 0;
  const tools: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      toolRequests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ open: '09:00', close: '17:00' }));
      }, toolDelayMs);
    });
  });
  await new Promise<void>((resolve) => tools.listen(0, '127.0.0.1', resolve));
  const toolPort = (tools.address() as { port: number }).port;

  const pool = await MediaWorkerPool.start({ size: 1, voicesDir });
  const t = await testApp(
    {
      DEEPGRAM_API_KEY: 'test-deepgram-key',
      DEEPGRAM_BASE_URL: deepgram.url,
      OPENAI_API_KEY: 'test-openai-key',
      OPENAI_BASE_URL: openai.baseUrl,
      ELEVENLABS_API_KEY: 'test-elevenlabs-key',
      ELEVENLABS_BASE_URL: elevenlabs.url,
      TOOLS_ALLOW_PRIVATE_NETWORK: String(opts.allowPrivateTools ?? true),
      VOICES_DIR: voicesDir,
      ...(twilio
        ? { TWILIO_ACCOUNT_SID: twilio.accountSid, TWILIO_AUTH_TOKEN: twilio.authToken, TWILIO_BASE_URL: twilio.baseUrl, PUBLIC_URL: `http://127.0.0.1:${port}` }
        : {}),
      ...opts.env,
    },
    { mediaEngine: pool },
  );
  const org = await t.createOrg();
  const address = await t.app.listen({ port, host: '127.0.0.1' });
  const url = `${address.replace('http', 'ws')}/twilio/media`;
  const events: CallEvent[] = [];
  t.app.callEvents.subscribe((e) => events.push(e));

  const turns = (callId: string) => t.app.callTurns.list(org.id, callId);
  const poll = async <T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await read();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  return {
    t,
    org,
    pool,
    deepgram,
    openai,
    elevenlabs,
    twilio,
    publicUrl: address,
    toolUrl: `http://127.0.0.1:${toolPort}/hours`,
    toolRequests,
    setToolDelay: (ms) => (toolDelayMs = ms),
    events,
    async createAgent(fields) {
      const res = await t.as(org.keys.member, {
        method: 'POST',
        url: '/v1/agents',
        payload: {
          name: 'Receptionist',
          systemPrompt: 'You are the receptionist of {{business}}.',
          variables: { business: 'Vocelio Bistro' },
          voice: { provider: 'piper', voiceId: 'test-voice' },
          stt: { provider: 'deepgram', model: 'nova-3', endpointingMs: 500 },
          // One scripted transcript per utterance of the fake STT, and hello.ulaw has a 290 ms pause between
          // its two sentences: these tests hold the fixed endpointing (adaptive turns: test/conversation/).
          turnDetection: { mode: 'fixed', minSilenceMs: 250, maxSilenceMs: 900 },
          llm: { provider: 'openai', model: 'gpt-test', fallbacks: [{ provider: 'openai', model: 'gpt-backup' }] },
          ...fields,
        },
      });
      if (res.statusCode !== 201) throw new Error(`agent: ${res.body}`);
      return res.json<{ id: string }>().id;
    },
    async dial(agentId, dialOpts) {
      const call = await t.app.calls.create(org.id, { agentId, direction: 'inbound' });
      const client = new TwilioStreamClient({ url, customParameters: { token: await t.app.calls.issueStreamToken(call) }, onEvent: dialOpts?.onEvent });
      await client.connect();
      return { call, client };
    },
    async testCall(agentId) {
      const res = await t.as(org.keys.member, { method: 'POST', url: `/v1/agents/${agentId}/test-calls`, payload: {} });
      if (res.statusCode !== 201) throw new Error(`test call: ${res.body}`);
      const { callId, token } = res.json<{ callId: string; token: string }>();
      return { callId, client: new TwilioStreamClient({ url, customParameters: { token } }) };
    },
    turns,
    waitForTurns: (callId, test, timeoutMs = 10_000) => poll(() => turns(callId), test, timeoutMs, 'turns'),
    waitForEnd: (callId, timeoutMs = 10_000) => poll(() => t.app.calls.get(org.id, callId), (c) => c.endedAt !== null, timeoutMs, 'the call to end'),
    async close() {
      await t.close();
      await pool.close();
      await deepgram.close();
      await openai.close();
      await elevenlabs.close();
      await twilio?.close();
      await new Promise((r) => tools.close(r));
      await rm(voicesDir, { recursive: true, force: true });
    },
  };
}

/** Media frames the client received. */
export const mediaFrames = (client: TwilioStreamClient): Array<{ at: number; msg: TwilioOutbound }> => client.received.filter((r) => r.msg.event === 'media');

/** The text of the last user message in an OpenAI request body. */
export function lastUserText(messages: unknown[]): string {
  const users = (messages as Array<{ role: string; content: unknown }>).filter((m) => m.role === 'user');
  const c = users.at(-1)?.content;
  return typeof c === 'string' ? c : '';
}
