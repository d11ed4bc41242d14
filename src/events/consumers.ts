import type { Tx } from '../db/client.js';
import { anyTypeMatches, isTypePattern, type MatchingTypes, type StoredEvent, type TypePattern } from './event-types.js';

/**
 * Something that acts on durable events (campaign outcomes, charges, outbound webhooks ...). Delivery is at
 * least once and unordered; the dispatcher makes handling once per event id (see `transactional`).
 */
export interface EventConsumer<P extends TypePattern = TypePattern> {
  /** Stable name (`[a-z][a-z0-9-]*`): delivery records and the consumer's queue are keyed on it. */
  name: string;
  /** The types it wants: exact (`call.ended`), a prefix wildcard (`call.*`) or `*`. */
  types: readonly P[];
  /**
   * Handles one event. Transactional consumers get the transaction that also records the delivery, so their
   * database work happens once per event; others get null. Throwing fails the attempt (retried with backoff).
   */
  handle(event: StoredEvent<MatchingTypes<P>>, tx: Tx | null): Promise<void>;
  /**
   * Default true: `handle` runs inside the delivery transaction (exactly-once effect on the database; keep it
   * short, on the embedded database a transaction holds the only connection). False: it runs outside any
   * transaction and the delivery is recorded after it succeeds, so work outside the database (an HTTP call)
   * is at least once and must be idempotent by event id itself.
   */
  transactional?: boolean;
  /** Tries before giving up (the delivery is then recorded as `dead`); default 10. */
  attempts?: number;
  /** First retry delay, doubled each time; default 1000 ms (10 attempts span about 8.5 minutes). */
  backoffMs?: number;
  /** Events handled at once per process; default 4. */
  concurrency?: number;
}

const NAME = /^[a-z][a-z0-9-]{0,47}$/;

/** The consumers this process runs; each folder registers its own, `startConsumers` starts them. */
export class EventConsumerRegistry {
  private readonly consumers = new Map<string, EventConsumer>();

  /** Adds a consumer; a bad or duplicate name or pattern is a programming error and throws at start-up. */
  register<P extends TypePattern>(consumer: EventConsumer<P>): void {
    if (!NAME.test(consumer.name)) throw new Error(`event consumer name "${consumer.name}" must match ${NAME}`);
    if (this.consumers.has(consumer.name)) throw new Error(`event consumer "${consumer.name}" is registered twice`);
    if (consumer.types.length === 0) throw new Error(`event consumer "${consumer.name}" wants no types`);
    for (const pattern of consumer.types) {
      if (!isTypePattern(pattern)) throw new Error(`event consumer "${consumer.name}": "${pattern}" is not a type pattern`);
    }
    // Safe: the dispatcher hands a consumer only events its own patterns admit.
    this.consumers.set(consumer.name, consumer as unknown as EventConsumer);
  }

  /** Every registered consumer. */
  all(): EventConsumer[] {
    return [...this.consumers.values()];
  }

  /** A consumer by name, or undefined. */
  get(name: string): EventConsumer | undefined {
    return this.consumers.get(name);
  }

  /** The consumers that want events of `type`. */
  forType(type: string): EventConsumer[] {
    return this.all().filter((c) => anyTypeMatches(c.types, type));
  }
}
