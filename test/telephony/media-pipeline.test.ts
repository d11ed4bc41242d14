import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { TwilioStreamClient } from '../../src/simulator/twilio-stream-client.js';
import { MediaWorkerPool } from '../../src/media/workers/media-worker-pool.js';
import { MediaFaults } from '../helpers/media-faults.js';
import type { CallEvent } from '../../src/calls/call-events.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/audio');
const fixture = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'fixtures.json'), 'utf8')) as { files: Record<string, { speech: Array<{ startMs: number; endMs: number }> }> };

describe('the media path: socket, worker pool and Silero VAD', () => {
  let t: TestApp;
  let org: TestOrg;
  let pool: MediaWorkerPool;
  const faults = new MediaFaults();
  let url: string;
  let echoAgentId: string;
  const events: CallEvent[] = [];

  beforeAll(async () => {
    pool = await MediaWorkerPool.start({ size: 2, spawnWorker: faults.spawn });
    t = await testApp({}, { mediaEngine: pool });
    org = await t.createOrg();
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `${address.replace('http', 'ws')}/twilio/media`;
    t.app.callEvents.subscribe((e) => events.push(e));
    const agent = await t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'Echo', voice: { provider: 'echo', voiceId: 'echo' } } });
    echoAgentId = agent.json().id;
  }, 60_000);
  afterAll(async () => {
    await t.close();
    await pool.close();
  });

  const dial = async () => {
    const call = await t.app.calls.create(org.id, { agentId: echoAgentId, direction: 'inbound' });
    const client = new TwilioStreamClient({ url, customParameters: { token: await t.app.calls.issueStreamToken(call) } });
    await client.connect();
    return { call, client };
  };
  const eventsOf = (callId: string) => events.filter((e) => e.callId === callId);

  it('reports speech start and end where the fixture has speech', async () => {
    const { call, client } = await dial();
    await client.speak(fixture('two-utterances.ulaw'));
    await client.silence(300);
    const starts = eventsOf(call.id).filter((e) => e.type === 'call.speech_started');
    const ends = eventsOf(call.id).filter((e) => e.type === 'call.speech_stopped');
    const expected = manifest.files['two-utterances.ulaw']!.speech;
    expect(starts).toHaveLength(expected.length);
    expect(ends).toHaveLength(expected.length);
    starts.forEach((s, i) => expect(Math.abs((s as { streamMs: number }).streamMs - expected[i]!.startMs)).toBeLessThan(150));
    ends.forEach((e, i) => expect(Math.abs((e as { streamMs: number }).streamMs - expected[i]!.endMs)).toBeLessThan(400));
    client.stop();
    await client.closed;
  }, 30_000);

  it('answers each utterance in echo mode and gets the mark back once it is played', async () => {
    const { call, client } = await dial();
    await client.speak(fixture('hello.ulaw'));
    // Audio is paced in real time, so the mark follows the whole echoed utterance.
    const mark = await client.waitFor((m) => m.event === 'mark', 10_000);
    const frames = client.received.filter((r) => r.msg.event === 'media');
    // The utterance is about 3.7 s long: the echo carries at least that much audio.
    expect(frames.length * 20).toBeGreaterThan(3000);
    expect(mark).toMatchObject({ event: 'mark', streamSid: client.streamSid });
    const session = t.app.callSessions.get(call.id)!;
    const deadline = Date.now() + 2000;
    while (session.heardMarks.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(session.heardMarks).toEqual([(mark as { mark: { name: string } }).mark.name]);
    // The echo agent says what it is doing too: listening, speaking the echo, listening once it was heard.
    const states = eventsOf(call.id).flatMap((e) => (e.type === 'call.agent_state' ? [e.state] : []));
    expect(states).toEqual(['listening', 'speaking', 'listening']);
    client.stop();
    await client.closed;
  }, 30_000);

  it('records how long the echo took to start, in its metrics', async () => {
    const before = t.app.callLatencies.echoOverheadMs.values().length;
    const { client } = await dial();
    await client.speak(fixture('hello.ulaw'));
    await client.waitFor((m) => m.event === 'media', 3000);
    expect(t.app.callLatencies.echoOverheadMs.values().length).toBe(before + 1);
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/vocelio_echo_response_seconds_count \d+/);
    client.stop();
    await client.closed;
  }, 30_000);

  it('stops playback at once with clear when the caller speaks over the echo', async () => {
    const { client } = await dial();
    await client.speak(fixture('hello.ulaw'));
    await client.waitFor((m) => m.event === 'media', 3000);
    // Talk over the echo: the server must clear what it queued.
    await client.speak(fixture('hello.ulaw').subarray(0, 8000 * 2));
    await client.waitFor((m) => m.event === 'clear', 3000);
    const clearedAt = client.clears[0]!;
    const sentAfterClear = client.received.filter((r) => r.msg.event === 'media' && r.at > clearedAt + 50);
    expect(sentAfterClear.length).toBeLessThan(5);
    expect(t.app.callLatencies.bargeInMs.values().length).toBeGreaterThan(0);
    client.stop();
    await client.closed;
  }, 30_000);

  it('gives no new calls to a lagging worker', async () => {
    const [laggy, healthy] = pool.stats().perWorker.map((w) => w.id);
    const isHealthy = (id: number) => pool.stats().perWorker.find((w) => w.id === id)?.healthy;
    faults.stall(laggy, 80, 3000);
    const deadline = Date.now() + 5000;
    while (isHealthy(laggy!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(isHealthy(laggy!)).toBe(false);
    const dialed = [await dial(), await dial(), await dial()];
    for (const d of dialed) {
      await new Promise((r) => setTimeout(r, 20));
      expect(pool.workerOf(d.call.id)).toBe(healthy);
    }
    for (const d of dialed) {
      d.client.stop();
      await d.client.closed;
    }
  }, 30_000);

  it('ends only the calls of a crashed worker, with the reason recorded, and replaces the worker', async () => {
    const a = await dial();
    const b = await dial();
    await a.client.silence(100);
    await b.client.silence(100);
    faults.crash(pool.workerOf(a.call.id));
    const closed = await a.client.closed;
    expect(closed.code).toBe(1000);
    expect(await t.app.calls.get(org.id, a.call.id)).toMatchObject({ endReason: 'worker_crashed' });
    const bOnSameWorker = (await t.app.calls.get(org.id, b.call.id)).endReason === 'worker_crashed';
    if (!bOnSameWorker) expect(t.app.callSessions.has(b.call.id)).toBe(true);
    const deadline = Date.now() + 15_000;
    while (pool.stats().workers < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(pool.stats().workers).toBe(2);
    b.client.stop();
    await b.client.closed;
  }, 30_000);
});
