import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BullMqJobQueue } from './bullmq-queue.js';
import { createJobQueue } from './create-queue.js';
import { InProcessJobQueue } from './in-process-queue.js';
import { describeQueueContract } from './queue-contract.js';

const REDIS_URL = process.env.REDIS_URL;

describeQueueContract('in-process', () => new InProcessJobQueue());

it('createJobQueue runs jobs in-process when no Redis URL is given', async () => {
  const queue = createJobQueue({});
  expect(queue.backend).toBe('in-process');
  await queue.close();
});

describe.skipIf(!REDIS_URL)('BullMQ backend', () => {
  const url = REDIS_URL ?? '';
  // Every test gets its own key prefix, so tests never see each other's jobs and cleanup is one SCAN.
  let prefixes: string[] = [];
  let redis: Redis;
  const freshPrefix = (): string => {
    const prefix = `vtest-${randomBytes(6).toString('hex')}`;
    prefixes.push(prefix);
    return prefix;
  };

  beforeAll(() => {
    redis = new Redis(url);
  });

  // Runs after the contract's own afterEach (hooks unwind like a stack), i.e. once its queues are closed.
  afterEach(async () => {
    for (const prefix of prefixes) {
      const keys: string[] = [];
      for await (const batch of redis.scanStream({ match: `${prefix}:*`, count: 500 })) keys.push(...(batch as string[]));
      if (keys.length > 0) await redis.del(...keys);
    }
    prefixes = [];
  });

  afterAll(async () => {
    await redis.quit();
  });

  describeQueueContract('bullmq', () => new BullMqJobQueue({ url, prefix: freshPrefix() }));

  it('createJobQueue uses BullMQ when a Redis URL is given', async () => {
    const queue = createJobQueue({ redisUrl: url, prefix: freshPrefix() });
    expect(queue.backend).toBe('bullmq');
    await queue.close();
  });

  it('runs jobs added by one JobQueue instance in another, delayed ones after their delay', async () => {
    const prefix = freshPrefix();
    const producer = new BullMqJobQueue({ url, prefix });
    const addedAt = Date.now();
    await producer.add('dial', 'later', { n: 1 }, { delayMs: 150 });
    await producer.add('dial', 'now', { n: 2 });
    // The first process goes away entirely (its connections with it) before anyone consumes.
    await producer.close();

    const restarted = new BullMqJobQueue({ url, prefix });
    const ran: { name: string; at: number }[] = [];
    restarted.consume('dial', async (job) => {
      ran.push({ name: job.name, at: Date.now() });
    });
    try {
      const deadline = Date.now() + 5_000;
      while (ran.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(ran.map((r) => r.name)).toEqual(['now', 'later']);
      expect((ran[1]?.at ?? 0) - addedAt).toBeGreaterThanOrEqual(149);
    } finally {
      await restarted.close();
    }
  });
});
