// The pool's own account of its workers: enough for metrics and the benchmark without reading its internals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MediaChannel } from '../media-engine.js';
import { MediaWorkerPool } from './media-worker-pool.js';

const SILENCE = () => new Uint8Array(160).fill(0xff);

describe('MediaWorkerPool.stats', () => {
  let pool: MediaWorkerPool;
  beforeAll(async () => {
    pool = await MediaWorkerPool.start({ size: 2 });
  }, 60_000);
  afterAll(() => pool.close());

  it('reports each worker with its calls, health and busy time', async () => {
    const before = pool.stats().perWorker;
    expect(before).toHaveLength(2);
    expect(new Set(before.map((w) => w.id)).size).toBe(2);
    expect(before.every((w) => w.calls === 0 && w.healthy)).toBe(true);

    const channel: MediaChannel = pool.open('call-stats', {}, () => {});
    const carrier = pool.workerOf('call-stats');
    for (let i = 0; i < 100; i++) channel.push(SILENCE());
    // Each worker reports its VAD cost once a second; by then its event loop has run Silero on every frame.
    const deadline = Date.now() + 5000;
    while (!(pool.stats().perWorker.find((w) => w.id === carrier)!.vadMeanMs > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

    const after = pool.stats().perWorker;
    const busy = after.find((w) => w.id === carrier)!;
    const idle = after.find((w) => w.id !== carrier)!;
    expect(busy.calls).toBe(1);
    expect(idle.calls).toBe(0);
    expect(busy.vadMeanMs).toBeGreaterThan(0);
    // Busy time is cumulative: it only grows, and the worker that ran 2 s of VAD grew more than the idle one.
    const grew = (w: { id: number; busyMs: number }) => w.busyMs - before.find((b) => b.id === w.id)!.busyMs;
    expect(grew(busy)).toBeGreaterThan(0);
    expect(grew(busy)).toBeGreaterThan(grew(idle));
    expect(busy.idleMs).toBeGreaterThan(0);
    expect(pool.stats().calls).toBe(1);
    channel.close();
    expect(pool.stats().perWorker.find((w) => w.id === carrier)!.calls).toBe(0);
  });
});
