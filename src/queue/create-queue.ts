import { BullMqJobQueue } from './bullmq-queue.js';
import { InProcessJobQueue } from './in-process-queue.js';
import type { JobQueue } from './queue.js';

/** Configuration for `createJobQueue`; usually straight from `REDIS_URL`. */
export interface CreateJobQueueOptions {
  /** With a URL jobs go to BullMQ on Redis; without one they run in this process (the embedded default). */
  redisUrl?: string;
  /** BullMQ key prefix; ignored in-process. */
  prefix?: string;
  /** Where infrastructure errors and failing `onFailed` hooks are reported; default `console.error`. */
  onError?: (error: Error) => void;
}

/** Picks the queue backend: BullMQ when a Redis URL is given, else the in-process queue. */
export function createJobQueue(opts: CreateJobQueueOptions = {}): JobQueue {
  if (opts.redisUrl) return new BullMqJobQueue({ url: opts.redisUrl, prefix: opts.prefix, onError: opts.onError });
  return new InProcessJobQueue({ onError: opts.onError });
}
