import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { MediaWorkerPool } from '../../src/media/workers/media-worker-pool.js';
import type { CallEvent } from '../../src/calls/call-events.js';
import { loadScript, type ScriptStep } from '../../src/simulator/script.js';
import { runSimulation, type SimulationOptions, type SimulationReport } from '../../src/simulator/simulate.js';
import { reachableStreamUrl, startTestCall } from '../../src/simulator/test-call.js';
import { mulawToWav, parseWav } from '../../src/simulator/wav.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/audio');
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'fixtures.json'), 'utf8')) as { files: Record<string, { speech: Array<{ startMs: number; endMs: number }> }> };
const [first, second] = manifest.files['two-utterances.ulaw']!.speech;
const speechMs = [first!.endMs - first!.startMs, second!.endMs - second!.startMs];

describe('the call simulator against the real media path and an echo agent', () => {
  let t: TestApp;
  let org: TestOrg;
  let pool: MediaWorkerPool;
  let baseUrl: string;
  let agentId: string;
  const events: CallEvent[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'vocelio-sim-'));

  // The two sentences of two-utterances.ulaw as separate files, each with a little silence around it.
  const clip = (name: string, fromMs: number, toMs: number) => {
    const audio = readFileSync(join(FIXTURES, 'two-utterances.ulaw')).subarray(fromMs * 8, toMs * 8);
    writeFileSync(join(dir, name), audio);
    return name;
  };
  const one = clip('one.ulaw', first!.startMs - 200, first!.endMs + 500);
  const two = clip('two.ulaw', second!.startMs - 200, second!.endMs + 500);

  beforeAll(async () => {
    pool = await MediaWorkerPool.start({ size: 1 });
    t = await testApp({}, { mediaEngine: pool });
    org = await t.createOrg();
    baseUrl = await t.app.listen({ port: 0, host: '127.0.0.1' });
    t.app.callEvents.subscribe((e) => events.push(e));
    const agent = await t.as(org.keys.member, { method: 'POST', url: '/v1/agents', payload: { name: 'Echo', voice: { provider: 'echo', voiceId: 'echo' } } });
    agentId = agent.json<{ id: string }>().id;
  }, 60_000);
  afterAll(async () => {
    await t.close();
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts a test call through the API, as the CLI does, and runs a script on it. */
  const simulate = async (steps: ScriptStep[], extra: Partial<SimulationOptions> = {}) => {
    const call = await startTestCall({ url: baseUrl, apiKey: org.keys.member, agentId });
    const script = await loadScript(steps, dir);
    const report = await runSimulation({ streamUrl: reachableStreamUrl(baseUrl, call.streamUrl).url, token: call.token, script, replySettleMs: 400, ...extra });
    return { callId: call.callId, report };
  };

  describe('a script of two utterances', () => {
    let report: SimulationReport;
    beforeAll(async () => {
      ({ report } = await simulate([{ say: one }, { say: two }]));
    }, 40_000);

    it('yields one turn per utterance, each answered by a reply about as long as what was said', () => {
      expect(report.turns.map((turn) => [turn.turn, turn.said, turn.outcome])).toEqual([
        [1, 'one.ulaw', 'replied'],
        [2, 'two.ulaw', 'replied'],
      ]);
      report.turns.forEach((turn, i) => {
        // The echo replays the utterance plus a little VAD pre-roll and end-of-turn silence.
        expect(turn.reply!.playedMs).toBeGreaterThan(speechMs[i]!);
        expect(turn.reply!.playedMs).toBeLessThan(speechMs[i]! + 1500);
        expect(turn.reply!.playedMs).toBe(turn.reply!.receivedMs);
      });
    });

    it('times each reply from the end of the caller\'s speech', () => {
      for (const turn of report.turns) {
        expect(turn.caller!.speechEndedAtMs).toBeLessThan(turn.caller!.endedAtMs);
        expect(Math.abs(turn.reply!.firstFrameAtMs - turn.caller!.speechEndedAtMs! - turn.reply!.latencyMs!)).toBeLessThanOrEqual(1);
        // Echo answers after the agent's endpointing silence (400 ms by default), well inside a human turn gap.
        expect(turn.reply!.latencyMs).toBeGreaterThan(300);
        expect(turn.reply!.latencyMs).toBeLessThan(1500);
      }
    });

    it('reports what the caller waited per turn: its last voiced frame sent -> the reply\'s first frame', () => {
      for (const turn of report.turns) {
        expect(Math.abs(turn.reply!.callerWaitMs! - (turn.reply!.firstFrameAtMs - turn.caller!.speechEndedAtMs!))).toBeLessThanOrEqual(1);
        expect(turn.reply!.callerWaitMs).toBeGreaterThan(300);
      }
    });

    it('gets every mark echoed once its reply has played', () => {
      for (const turn of report.turns) expect(turn.reply).toMatchObject({ marksSent: 1, marksEchoed: 1, cleared: null });
      expect(report.totals).toMatchObject({ marksReceived: 2, marksEchoed: 2, clears: 0 });
    });

    it('keeps the line open between steps: frames were sent for the whole call', () => {
      expect(report.totals.framesSent * 20).toBeGreaterThan(report.durationMs - 500);
      expect(report.totals.framesSent * 20).toBeLessThan(report.durationMs + 100);
    });

    it('records the agent\'s audio, which decodes to as much audio as the replies played', () => {
      const wav = parseWav(mulawToWav(report.agentAudio));
      expect(wav).toMatchObject({ format: 'pcm', sampleRate: 8000, channels: 1, bitsPerSample: 16 });
      const played = report.turns.reduce((ms, turn) => ms + turn.reply!.playedMs, 0);
      expect((wav.data.length / 2 / 8000) * 1000).toBe(played);
    });

    it('ends normally when the script is done: stop sent, the server closes with 1000', () => {
      expect(report.ended).toEqual({ by: 'caller', code: 1000, reason: 'stream_stopped', abnormal: false });
    });
  });

  it('reports a reply cut off by a barge-in as cleared, timed from the caller starting to talk over it', async () => {
    const { report } = await simulate([{ say: one }, { say: two, bargeInAfterMs: 600 }]);
    const [interrupted, barge] = report.turns;
    expect(interrupted).toMatchObject({ turn: 1, outcome: 'cleared' });
    expect(interrupted!.reply!.playedMs).toBeLessThan(interrupted!.reply!.receivedMs + 1);
    expect(interrupted!.reply!.playedMs).toBeLessThan(speechMs[0]!);
    // Silero confirms speech after ~200 ms of it; the clear follows within a frame or two.
    expect(interrupted!.reply!.cleared!.afterCallerSpeechMs).toBeGreaterThan(0);
    expect(interrupted!.reply!.cleared!.afterCallerSpeechMs).toBeLessThan(800);
    expect(barge).toMatchObject({ turn: 2, outcome: 'replied', bargeIn: { intoTurn: 1, requestedAfterMs: 600 } });
    expect(barge!.bargeIn!.startedAfterMs).toBeGreaterThanOrEqual(580);
    expect(barge!.bargeIn!.startedAfterMs).toBeLessThan(700);
    expect(report.totals.clears).toBe(1);
  }, 40_000);

  it('presses keys one by one, published as call.dtmf events', async () => {
    const { callId, report } = await simulate([{ dtmf: '12#' }, { pause: 200 }]);
    expect(report.totals.dtmfSent).toBe(3);
    const digits = events.filter((e) => e.callId === callId && e.type === 'call.dtmf').map((e) => (e as { digit: string }).digit);
    expect(digits).toEqual(['1', '2', '#']);
  }, 20_000);

  it('waits for the agent to answer keys as a turn of its own, and reports when it does not', async () => {
    const { report } = await simulate([{ dtmf: '42' }, { waitForReply: true }], { replyTimeoutMs: 300 });
    expect(report.turns).toEqual([expect.objectContaining({ turn: 1, said: null, keys: '42', reply: null, outcome: 'no_reply' })]);
  }, 20_000);

  it('ends and says so when the server closes the stream mid-script', async () => {
    const call = await startTestCall({ url: baseUrl, apiKey: org.keys.member, agentId });
    const script = await loadScript([{ pause: 5000 }], dir);
    const running = runSimulation({ streamUrl: reachableStreamUrl(baseUrl, call.streamUrl).url, token: call.token, script });
    const deadline = Date.now() + 5000;
    while (!t.app.callSessions.has(call.callId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    await t.app.callSessions.get(call.callId)!.end('max_duration');
    const report = await running;
    expect(Date.now() - started).toBeLessThan(1000);
    expect(report.ended).toEqual({ by: 'server', code: 1000, reason: 'max_duration', abnormal: true });
  }, 20_000);

  it('reports a refused stream token as the server ending the call', async () => {
    const call = await startTestCall({ url: baseUrl, apiKey: org.keys.member, agentId });
    const script = await loadScript([{ pause: 300 }], dir);
    const streamUrl = reachableStreamUrl(baseUrl, call.streamUrl).url;
    await runSimulation({ streamUrl, token: call.token, script });
    const again = await runSimulation({ streamUrl, token: call.token, script });
    expect(again.ended).toMatchObject({ by: 'server', code: 1008, reason: 'stream token reused', abnormal: true });
  }, 20_000);
});
