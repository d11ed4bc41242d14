import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobQueueError, UnrecoverableJobError, type Job, type JobQueue } from './queue.js';

// The behaviour every JobQueue backend must share. Test-only: imported by `queue.test.ts`, never by the app.

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` holds; a job queue gives no completion promise, and the backends finish asynchronously. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

function pendingTimers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout' || kind === 'Immediate').length;
}

interface Failure {
  job: Job<unknown>;
  error: Error;
}

/**
 * Registers the JobQueue contract for one backend. `make` must return a fresh, isolated queue each call
 * (for BullMQ: a new key prefix); the suite closes every queue it makes.
 */
export function describeQueueContract(name: string, make: () => Promise<JobQueue> | JobQueue): void {
  describe(`JobQueue contract: ${name}`, () => {
    let queue: JobQueue;

    beforeEach(async () => {
      queue = await make();
    });

    afterEach(async () => {
      await queue.close();
    });

    it('runs a job added to the queue', async () => {
      const seen: Job<{ to: string }>[] = [];
      queue.consume<{ to: string }>('mail', async (job) => {
        seen.push(job);
      });

      const id = await queue.add('mail', 'welcome', { to: 'ada@example.com' });

      await until('the job to complete', async () => (await queue.counts('mail')).completed === 1);
      expect(seen).toEqual([{ id, queue: 'mail', name: 'welcome', data: { to: 'ada@example.com' }, attempt: 1 }]);
      expect(await queue.counts('mail')).toEqual({ waiting: 0, delayed: 0, active: 0, completed: 1, failed: 0 });
    });

    it('delays a delayed job by at least its delay', async () => {
      let ranAt = 0;
      queue.consume('dial', async () => {
        ranAt = Date.now();
      });

      const addedAt = Date.now();
      await queue.add('dial', 'callback', { contact: 'c1' }, { delayMs: 150 });
      expect((await queue.counts('dial')).delayed).toBe(1);

      await until('the delayed job to run', () => ranAt > 0);
      // 1 ms of slack: Date.now() is rounded to whole milliseconds, the timers are not.
      expect(ranAt - addedAt).toBeGreaterThanOrEqual(149);
      expect(ranAt - addedAt).toBeLessThan(150 + 1_000);
    });

    it('keeps a job delayed beyond the 24.8-day range of setTimeout', async () => {
      let ran = false;
      queue.consume('campaigns', async () => {
        ran = true;
      });

      await queue.add('campaigns', 'start', {}, { delayMs: 30 * 24 * 60 * 60 * 1000 });
      await sleep(50);

      expect(ran).toBe(false);
      expect((await queue.counts('campaigns')).delayed).toBe(1);
    });

    it('retries a failing job with exponential backoff until it succeeds', async () => {
      const tries: { attempt: number; at: number }[] = [];
      queue.consume('sync', async (job) => {
        tries.push({ attempt: job.attempt, at: Date.now() });
        if (job.attempt < 4) throw new Error(`transient failure ${job.attempt}`);
      });

      await queue.add('sync', 'push-usage', {}, { attempts: 4, backoff: { type: 'exponential', delayMs: 40 } });

      await until('the job to complete', async () => (await queue.counts('sync')).completed === 1);
      expect(tries.map((t) => t.attempt)).toEqual([1, 2, 3, 4]);
      const gaps = tries.slice(1).map((t, i) => t.at - (tries[i]?.at ?? 0));
      // 40, 80, 160 ms, each at least its backoff (1 ms slack for Date.now rounding) and growing.
      gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(40 * 2 ** i - 1));
      expect(gaps[1]).toBeGreaterThan(gaps[0] ?? Infinity);
      expect(gaps[2]).toBeGreaterThan(gaps[1] ?? Infinity);
      expect((await queue.counts('sync')).failed).toBe(0);
    });

    it('retries with a fixed backoff at a constant spacing', async () => {
      const at: number[] = [];
      queue.consume('sync', async (job) => {
        at.push(Date.now());
        if (job.attempt < 3) throw new Error('not yet');
      });

      await queue.add('sync', 'push-usage', {}, { attempts: 3, backoff: { type: 'fixed', delayMs: 80 } });

      await until('the job to complete', async () => (await queue.counts('sync')).completed === 1);
      const gaps = at.slice(1).map((t, i) => t - (at[i] ?? 0));
      expect(gaps).toHaveLength(2);
      // Exponential would make the second gap 160 ms.
      for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(79);
      expect(gaps[1]).toBeLessThan(140);
    });

    it('gives up after `attempts` tries, counts the job failed and reports it once to onFailed', async () => {
      let calls = 0;
      const failures: Failure[] = [];
      queue.consume(
        'webhooks',
        async (job) => {
          calls++;
          throw new Error(`endpoint down on try ${job.attempt}`);
        },
        { onFailed: (job, error) => void failures.push({ job, error }) },
      );

      const id = await queue.add('webhooks', 'deliver', { url: 'https://example.com/hook' }, { attempts: 3 });

      await until('onFailed', () => failures.length > 0);
      expect(calls).toBe(3);
      expect(failures).toHaveLength(1);
      expect(failures[0]?.job).toMatchObject({ id, name: 'deliver', attempt: 3, data: { url: 'https://example.com/hook' } });
      expect(failures[0]?.error.message).toBe('endpoint down on try 3');
      expect(await queue.counts('webhooks')).toMatchObject({ waiting: 0, delayed: 0, active: 0, completed: 0, failed: 1 });
      await sleep(50);
      expect(calls).toBe(3);
    });

    it('fails a job that throws UnrecoverableJobError at once, without retrying', async () => {
      let calls = 0;
      const failures: Failure[] = [];
      queue.consume(
        'dial',
        async () => {
          calls++;
          throw new UnrecoverableJobError('number is on the do-not-call list');
        },
        { onFailed: (job, error) => void failures.push({ job, error }) },
      );

      await queue.add('dial', 'call', { contact: 'c2' }, { attempts: 5, backoff: { type: 'fixed', delayMs: 10 } });

      await until('onFailed', () => failures.length > 0);
      expect(failures[0]?.job.attempt).toBe(1);
      expect(failures[0]?.error).toBeInstanceOf(UnrecoverableJobError);
      expect(failures[0]?.error.message).toBe('number is on the do-not-call list');
      expect((await queue.counts('dial')).failed).toBe(1);
      await sleep(100);
      expect(calls).toBe(1);
    });

    it('never runs more than `concurrency` jobs of a consumer at once', async () => {
      let running = 0;
      let peak = 0;
      let done = 0;
      queue.consume(
        'recordings',
        async () => {
          running++;
          peak = Math.max(peak, running);
          await sleep(40);
          running--;
          done++;
        },
        { concurrency: 3 },
      );

      for (let i = 0; i < 9; i++) await queue.add('recordings', 'transcode', { i });

      await until('all jobs to finish', () => done === 9);
      expect(peak).toBe(3);
    });

    it('caps job starts per window with the rate limiter', async () => {
      const starts: number[] = [];
      queue.consume(
        'dial',
        async () => {
          starts.push(Date.now());
        },
        { concurrency: 10, limiter: { max: 2, durationMs: 150 } },
      );

      for (let i = 0; i < 6; i++) await queue.add('dial', 'call', { i });

      await until('all jobs to start', () => starts.length === 6);
      starts.sort((a, b) => a - b);
      // Any 3 consecutive starts span at least one window. BullMQ's window opens when its first job is
      // fetched, a few ms before that job's handler starts, hence the slack.
      for (let i = 0; i + 2 < starts.length; i++) {
        expect((starts[i + 2] ?? 0) - (starts[i] ?? 0)).toBeGreaterThanOrEqual(150 - 15);
      }
      expect((starts[5] ?? 0) - (starts[0] ?? 0)).toBeGreaterThanOrEqual(2 * 150 - 15);
    });

    it('adds a job with a duplicate jobId only once, also after it completed', async () => {
      const first = await queue.add('dial', 'call', { n: 1 }, { jobId: 'contact-42' });
      const second = await queue.add('dial', 'call', { n: 2 }, { jobId: 'contact-42' });
      expect([first, second]).toEqual(['contact-42', 'contact-42']);
      expect((await queue.counts('dial')).waiting).toBe(1);

      const seen: unknown[] = [];
      queue.consume('dial', async (job) => {
        seen.push(job.data);
      });
      await until('the job to complete', async () => (await queue.counts('dial')).completed === 1);

      // A completed job is kept for a while, and while it is, its id still deduplicates.
      await queue.add('dial', 'call', { n: 3 }, { jobId: 'contact-42' });
      await sleep(50);
      expect(seen).toEqual([{ n: 1 }]);
      expect(await queue.counts('dial')).toMatchObject({ waiting: 0, delayed: 0, completed: 1 });
    });

    it('leaves jobs to the next consumer when one closes (survives a worker restart)', async () => {
      const ranBy: { consumer: string; n: number }[] = [];
      let closingFirst: Promise<void> | undefined;
      const first = queue.consume<{ n: number }>('billing', async (job) => {
        ranBy.push({ consumer: 'first', n: job.data.n });
        // Shut down mid-job, as a deploy would: the active job must still finish.
        closingFirst ??= first.close();
        await sleep(30);
      });
      for (let n = 1; n <= 4; n++) await queue.add('billing', 'sync', { n });

      await until('the first consumer to start closing', () => closingFirst !== undefined);
      await closingFirst;
      expect(ranBy).toEqual([{ consumer: 'first', n: 1 }]);
      expect(await queue.counts('billing')).toMatchObject({ waiting: 3, active: 0, completed: 1 });

      queue.consume<{ n: number }>('billing', async (job) => {
        ranBy.push({ consumer: 'second', n: job.data.n });
      });
      await until('the rest to complete', async () => (await queue.counts('billing')).completed === 4);
      expect(ranBy.map((r) => `${r.consumer}:${r.n}`)).toEqual(['first:1', 'second:2', 'second:3', 'second:4']);
    });

    it('close() leaves no pending timers behind (delays, retries, rate limit)', async () => {
      const baseline = pendingTimers();
      const own = await make();
      let finished = false;
      own.consume(
        'dial',
        async (job) => {
          if (job.name === 'fails') throw new Error('retry me much later');
          await sleep(50);
          finished = true;
        },
        { limiter: { max: 1, durationMs: 10_000 } },
      );
      await own.add('dial', 'fails', {}, { attempts: 2, backoff: { type: 'fixed', delayMs: 10_000 } });
      await own.add('dial', 'slow', {});
      await own.add('dial', 'later', {}, { delayMs: 10_000 });
      await until('the retry to be scheduled', async () => (await own.counts('dial')).delayed === 2);

      await own.close();

      expect(finished).toBe(false); // the limiter held 'slow' back, so nothing was active
      expect(pendingTimers()).toBeLessThanOrEqual(baseline);
    });

    it('waits for the active job when closing', async () => {
      let finished = false;
      queue.consume('dial', async () => {
        await sleep(80);
        finished = true;
      });
      await queue.add('dial', 'call', {});
      await until('the job to start', async () => (await queue.counts('dial')).active === 1);

      await queue.close();

      expect(finished).toBe(true);
    });

    it('refuses jobs, consumers and counts once closed', async () => {
      await queue.close();
      await expect(queue.add('dial', 'call', {})).rejects.toMatchObject({ code: 'closed' });
      expect(() => queue.consume('dial', async () => {})).toThrow(JobQueueError);
      await expect(queue.counts('dial')).rejects.toMatchObject({ code: 'closed' });
    });

    it('rejects a queue name or jobId that BullMQ could not store', async () => {
      await expect(queue.add('a:b', 'call', {})).rejects.toMatchObject({ code: 'invalid_options' });
      await expect(queue.add('dial', 'call', {}, { jobId: '42' })).rejects.toBeInstanceOf(JobQueueError);
      await expect(queue.add('dial', 'call', {}, { jobId: 'x:y' })).rejects.toBeInstanceOf(JobQueueError);
      await expect(queue.add('dial', 'call', {}, { attempts: 0 })).rejects.toBeInstanceOf(JobQueueError);
    });
  });
}
