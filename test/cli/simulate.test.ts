import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWav } from '../../src/simulator/wav.js';
import { BIN, freePort, serve, type ServeProcess } from '../helpers/cli.js';

const HELLO = join(import.meta.dirname, '../fixtures/audio/hello.ulaw');

/** Runs `vocelio simulate ...` to completion, as a user at a shell would. */
function simulate(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { VOCELIO_API_KEY: _k, VOCELIO_URL: _u, ...base } = process.env;
  const child = spawn(process.execPath, [BIN, 'simulate', ...args], { env: { ...base, VOCELIO_FROM_SOURCE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('vocelio simulate against vocelio serve', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vocelio-simulate-'));
  let server: ServeProcess;
  let url = '';
  let apiKey = '';
  let agentId = '';

  beforeAll(async () => {
    const port = await freePort();
    server = serve(join(dir, 'data'), port);
    url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`vocelio serve did not come up:\n${server.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    apiKey = /vk_[A-Za-z0-9_-]{40}/.exec(server.output())![0];
    const res = await fetch(`${url}/v1/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Echo', voice: { provider: 'echo', voiceId: 'echo' } }),
    });
    agentId = ((await res.json()) as { id: string }).id;
  }, 60_000);
  afterAll(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('calls an echo agent, reports the turn as JSON and records the reply to a WAV', async () => {
    const wav = join(dir, 'agent.wav');
    const run = await simulate(['--url', url, '--key', apiKey, '--agent', agentId, '--say', HELLO, '--record', wav, '--json']);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { turns: Array<{ outcome: string; reply: { latencyMs: number; callerWaitMs: number | null; playedMs: number } | null }>; ended: { abnormal: boolean }; recording: { durationMs: number } };
    expect(report.turns).toHaveLength(1);
    expect(report.turns[0]).toMatchObject({ outcome: 'replied' });
    expect(report.turns[0]!.reply!.callerWaitMs).toBeGreaterThan(300);
    expect(report.turns[0]!.reply!.playedMs).toBeGreaterThan(3000);
    expect(report.ended.abnormal).toBe(false);
    const written = parseWav(readFileSync(wav));
    expect(written).toMatchObject({ format: 'pcm', sampleRate: 8000, channels: 1 });
    expect(written.data.length / 2 / 8).toBe(report.turns[0]!.reply!.playedMs);
    expect(report.recording.durationMs).toBe(report.turns[0]!.reply!.playedMs);
    // The server's PUBLIC_URL says localhost; the CLI reached it as 127.0.0.1 and says it dialled that instead.
    expect(run.stderr).toContain(`dialling ws://127.0.0.1:${new URL(url).port}/twilio/media instead`);
    expect(run.stderr).toMatch(/turn 1: saying hello\.ulaw \(5\.1 s\)\.\.\. agent replied after \d+ ms \(\d+\.\d s of audio\)/);
  }, 60_000);

  it('prints a per-turn table on stdout without --json', async () => {
    const run = await simulate(['--url', url, '--agent', agentId, '--dtmf', '1', '--pause', '100'], { VOCELIO_API_KEY: apiKey });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^turn +caller said +speech ended +caller wait +reply after +reply +played +marks +outcome$/m);
    expect(run.stdout).toMatch(/hung up by the simulator \(server closed 1000 stream_stopped\)/);
    expect(run.stdout).toContain('DTMF keys 1');
  }, 30_000);

  it('exits 1 and says the key was refused when it is wrong', async () => {
    const run = await simulate(['--url', url, '--key', 'vk_wrong', '--agent', agentId, '--pause', '100']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('did not accept the API key (401');
  }, 30_000);

  it('exits 1 and says the agent was not found when it belongs to no one', async () => {
    const run = await simulate(['--url', url, '--key', apiKey, '--agent', 'agt_00000000000000000000000000', '--pause', '100']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('agent agt_00000000000000000000000000 was not found');
  }, 30_000);
});

describe('vocelio simulate without a server', () => {
  it('asks whether vocelio is running when the connection is refused', async () => {
    const port = await freePort();
    const run = await simulate(['--url', `http://127.0.0.1:${port}`, '--key', 'vk_x', '--agent', 'agt_00000000000000000000000000', '--say', HELLO]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe(`vocelio: cannot reach vocelio at http://127.0.0.1:${port} (connection refused): is it running there? Start it with npm start, or point --url at it`);
  }, 30_000);

  it('exits 2 naming the missing audio file before calling anyone', async () => {
    const run = await simulate(['--key', 'vk_x', '--agent', 'agt_00000000000000000000000000', '--say', 'nowhere.wav']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('step 1 (say):');
    expect(run.stderr).toContain('nowhere.wav: no such file');
  }, 30_000);

  it('exits 2 when no agent is given', async () => {
    const run = await simulate(['--say', HELLO]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('simulate needs --agent <agt_...>');
  }, 30_000);

  it('writes no recording when the call cannot start', async () => {
    const wav = join(tmpdir(), `vocelio-never-${process.pid}.wav`);
    await simulate(['--url', `http://127.0.0.1:${await freePort()}`, '--key', 'vk_x', '--agent', 'agt_00000000000000000000000000', '--say', HELLO, '--record', wav]);
    expect(existsSync(wav)).toBe(false);
  }, 30_000);
});
