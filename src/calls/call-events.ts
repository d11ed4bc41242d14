import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';

/**
 * Live events of calls, for dashboards: not stored, fanned out to every node. What must not be lost
 * (created, started, answered, ended ...) is a durable event in `src/events/` instead, and is not repeated here.
 */
export type CallEvent =
  | { type: 'call.speech_started'; callId: string; organizationId: string; at: string; streamMs: number }
  | { type: 'call.speech_stopped'; callId: string; organizationId: string; at: string; streamMs: number; durationMs: number }
  | { type: 'call.dtmf'; callId: string; organizationId: string; at: string; digit: string }
  /** Live transcript: `final: false` for the caller's interim words, `true` for a finished turn. */
  | { type: 'call.transcript'; callId: string; organizationId: string; at: string; role: 'user' | 'assistant'; text: string; final: boolean; seq?: number; interrupted?: boolean }
  | { type: 'call.tool'; callId: string; organizationId: string; at: string; name: string; ok: boolean; ms: number }
  | { type: 'call.interrupted'; callId: string; organizationId: string; at: string; seq: number; heardText: string }
  /** What the agent is doing: `thinking` from the caller's turn to its first audio, `speaking` while audio plays. */
  | { type: 'call.agent_state'; callId: string; organizationId: string; at: string; state: 'listening' | 'thinking' | 'speaking' }
  /** The carrier's view of the call moved on (ringing, answered, completed ...). */
  | { type: 'call.status'; callId: string; organizationId: string; at: string; status: string; durationSeconds?: number }
  /** Answering-machine detection's verdict; the node holding the call's media acts on it. */
  | { type: 'call.answered_by'; callId: string; organizationId: string; at: string; answeredBy: string; raw: string };

const CHANNEL_PREFIX = 'vocelio:call-events:';

/**
 * Publishes call events in-process and, when Redis is configured, over pub/sub so every `serve` node's
 * subscribers see every call. With Redis, local subscribers are fed from the subscription too, so each
 * event arrives exactly once whichever node produced it.
 */
export class CallEventBus {
  private readonly local = new EventEmitter();
  private subscriber: Redis | null = null;

  constructor(private readonly redis: Redis | null) {
    this.local.setMaxListeners(0);
  }

  /** Starts the Redis subscription (no-op without Redis). */
  async start(): Promise<void> {
    if (!this.redis) return;
    this.subscriber = this.redis.duplicate();
    this.subscriber.on('error', () => {});
    await this.subscriber.psubscribe(`${CHANNEL_PREFIX}*`);
    this.subscriber.on('pmessage', (_pattern, _channel, message: string) => {
      try {
        this.local.emit('event', JSON.parse(message) as CallEvent);
      } catch {
        // A foreign message on our channel is not ours to interpret.
      }
    });
  }

  /** Publishes one event; a Redis failure is reported, never thrown into the call path. */
  publish(event: CallEvent): void {
    if (!this.redis) {
      this.local.emit('event', event);
      return;
    }
    this.redis.publish(`${CHANNEL_PREFIX}${event.organizationId}`, JSON.stringify(event)).catch(() => {});
  }

  /** Calls `handler` for every event (optionally of one organization); returns the unsubscribe function. */
  subscribe(handler: (event: CallEvent) => void, organizationId?: string): () => void {
    const listener = (e: CallEvent) => {
      if (!organizationId || e.organizationId === organizationId) handler(e);
    };
    this.local.on('event', listener);
    return () => this.local.off('event', listener);
  }

  async close(): Promise<void> {
    this.local.removeAllListeners();
    if (this.subscriber) await this.subscriber.quit().catch(() => this.subscriber?.disconnect());
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A call event before the session stamps it with the call, organization and time. */
export type CallEventInput = DistributiveOmit<CallEvent, 'callId' | 'organizationId' | 'at'>;
