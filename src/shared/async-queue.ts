/**
 * An unbounded single-consumer queue that is also an async iterable: items pushed before anyone iterates
 * are kept; `end()` finishes the iteration after the queued items, `fail()` throws after them.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private ended = false;
  private failure: unknown = null;

  /** `onReturn` runs when the consumer stops iterating early (`break`, a throw in its loop body). */
  constructor(private readonly onReturn?: () => void) {}

  /** Adds an item (ignored after `end()` or `fail()`). */
  push(item: T): void {
    if (this.ended) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w({ value: item, done: false });
    } else this.items.push(item);
  }

  /** No more items: the iteration ends once the queued ones are taken. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.waiting && this.items.length === 0) {
      const w = this.waiting;
      this.waiting = null;
      w({ value: undefined, done: true });
    }
  }

  /** Ends the iteration with `error` after the queued items (ignored once ended). */
  fail(error: unknown): void {
    if (this.ended) return;
    this.failure = error;
    this.end();
  }

  /** Drops queued items (barge-in drops data, never the end). */
  clear(): void {
    this.items.length = 0;
  }

  /** Drops queued items and ends: aborted work must not be consumed. */
  abort(): void {
    this.clear();
    this.end();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    let finished = false;
    try {
      for (;;) {
        if (this.items.length > 0) {
          yield this.items.shift()!;
          continue;
        }
        if (this.ended) break;
        const next = await new Promise<IteratorResult<T>>((resolve) => (this.waiting = resolve));
        if (next.done) break;
        yield next.value;
      }
      finished = true;
      if (this.failure) throw this.failure;
    } finally {
      if (!finished) {
        this.items.length = 0;
        this.onReturn?.();
      }
    }
  }
}
