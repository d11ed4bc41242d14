import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { BIN, freePort, serve, waitForHealth } from '../helpers/cli.js';
import { SseClient } from '../helpers/sse.js';
import { openDatabase } from '../../src/db/client.js';
import { events } from '../../src/events/events.table.js';

describe('vocelio serve on the embedded default', () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'vocelio-cli-')), 'data');
  afterAll(() => rmSync(join(dataDir, '..'), { recursive: true, force: true }));
  let apiKey = '';

  it('starts with no configuration, creates the data dir, prints an API key once (on stderr, not the log stream) and answers /health', async () => {
    const port = await freePort();
    const run = serve(dataDir, port);
    try {
      await waitForHealth(port, 20_000);
      expect(existsSync(join(dataDir, 'pglite'))).toBe(true);
      const keys = run.output().match(/vk_[A-Za-z0-9_-]{40}/g) ?? [];
      expect(new Set(keys).size).toBe(1);
      // stdout carries the JSON logs that log shippers collect: the owner key must never be there.
      expect(run.stderr()).toMatch(/API key \(owner\): +vk_[A-Za-z0-9_-]{40}/);
      expect(run.stdout()).not.toMatch(/vk_[A-Za-z0-9_-]{40}/);
      apiKey = keys[0]!;
      const res = await fetch(`http://127.0.0.1:${port}/v1/agents`, { headers: { authorization: `Bearer ${apiKey}` } });
      expect(res.status).toBe(200);
      const created = await fetch(`http://127.0.0.1:${port}/v1/agents`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Survives restarts' }),
      });
      expect(created.status).toBe(201);
    } finally {
      run.child.kill('SIGTERM');
    }
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('shutting down');
  }, 60_000);

  it('reuses the data on a second start: no new key, the old key and its agent still there', async () => {
    const port = await freePort();
    const run = serve(dataDir, port);
    try {
      await waitForHealth(port, 20_000);
      expect(run.output()).not.toMatch(/vk_[A-Za-z0-9_-]{40}/);
      const res = await fetch(`http://127.0.0.1:${port}/v1/agents`, { headers: { authorization: `Bearer ${apiKey}` } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { data: Array<{ name: string }> };
      expect(body.data.map((a) => a.name)).toEqual(['Survives restarts']);
    } finally {
      run.child.kill('SIGTERM');
    }
    expect(await run.exited).toBe(0);
  }, 60_000);

  it("streams a call's events, dispatches them in the same process, and still stops cleanly with a stream open", async () => {
    const port = await freePort();
    const run = serve(dataDir, port);
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${apiKey}` };
    let stream: SseClient | undefined;
    let callId = '';
    try {
      await waitForHealth(port, 20_000);
      stream = await SseClient.open(`${base}/v1/events/stream`, auth);
      expect(stream.status).toBe(200);
      const agent = (await (await fetch(`${base}/v1/agents`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Echo', voice: { provider: 'echo', voiceId: 'echo' } }) })).json()) as { id: string };
      callId = ((await (await fetch(`${base}/v1/agents/${agent.id}/test-calls`, { method: 'POST', headers: auth })).json()) as { callId: string }).callId;
      await stream.waitFor((m) => m.event === 'call.created' && m.json.subject === callId, 10_000);
    } finally {
      run.child.kill('SIGTERM');
    }
    expect(await run.exited).toBe(0);
    // The server ended the open stream on its way out instead of waiting for the client.
    await stream?.ended;
    // With the database free again: the embedded server ran the dispatcher, so the event is stamped and dispatched.
    const database = await openDatabase({ dataDir });
    try {
      const rows = await database.db.select().from(events).where(eq(events.subject, callId));
      expect(rows).toEqual([expect.objectContaining({ type: 'call.created', seq: expect.any(Number), dispatchedAt: expect.any(Date) })]);
    } finally {
      await database.close();
    }
  }, 60_000);

  it('stops with one clear line when a variable is bad', async () => {
    const run = serve(dataDir, await freePort());
    run.child.kill('SIGTERM');
    await run.exited;
    const bad = spawn(process.execPath, [BIN, 'serve'], { env: { ...process.env, PORT: 'eighty', VOCELIO_FROM_SOURCE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    bad.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((resolve) => bad.on('exit', resolve));
    expect(code).toBe(1);
    expect(err.trim()).toBe('vocelio: configuration error: PORT: must be a whole number, got "eighty"');
  }, 30_000);
});
