import type { ServerResponse } from 'node:http';
import type { CallEvent } from '../calls/call-events.js';
import { anyTypeMatches, type StoredEvent } from './event-types.js';

/** What a client asked to see: one call's events and/or some types (patterns like `call.*`). */
export interface StreamFilter {
  callId?: string;
  types?: readonly string[];
}

/** Per-connection limits. */
export interface StreamLimits {
  /** A comment line this often keeps proxies and clients from timing out an idle stream. */
  heartbeatMs: number;
  /** Bytes waiting to be sent (unread by the client) above which the client is cut off. */
  maxBufferedBytes: number;
}

/**
 * One message as the client reads it (the SSE `data`). Durable events carry their `evt_` id, also sent as
 * the SSE `id` so a reconnect's `Last-Event-ID` names it; live events carry none and leave it unchanged.
 */
export interface StreamMessage {
  id: string | null;
  type: string;
  /** What it is about: the call id for `call.*` events. */
  subject: string;
  at: string;
  data: Record<string, unknown>;
}

/** The stream message of a durable event. */
export const durableMessage = (e: StoredEvent): StreamMessage => ({ id: e.id, type: e.type, subject: e.subject, at: e.createdAt, data: e.payload });

/** The stream message of a live call event. */
export function liveMessage(e: CallEvent): StreamMessage {
  const { type, callId, organizationId: _organizationId, at, ...data } = e;
  return { id: null, type, subject: callId, at, data };
}

/** Why a connection ended: the client left, it read too slowly, the server is closing, or our own failure. */
export type CloseReason = 'client' | 'slow' | 'shutdown' | 'error';

/**
 * One Server-Sent Events response. Durable events arriving while missed ones are replayed wait in a buffer
 * and go out after the replay, each at most once (by sequence number). Writes never wait for the client:
 * when more than `maxBufferedBytes` sit unsent, the client is cut off, so a client that stops reading costs
 * a bounded amount of memory and its reconnect (with `Last-Event-ID`) picks up the durable events.
 */
export class SseConnection {
  /** Highest durable sequence number sent (or skipped as already seen). */
  lastSeq = 0;
  private state: 'replaying' | 'live' | 'closed' = 'replaying';
  private held: { message: StreamMessage; seq?: number }[] = [];
  private heldBytes = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private checkScheduled = false;

  constructor(
    readonly organizationId: string,
    private readonly res: ServerResponse,
    private readonly filter: StreamFilter,
    private readonly limits: StreamLimits,
    private readonly onClose: (conn: SseConnection, reason: CloseReason) => void,
  ) {
    res.on('close', () => this.close('client'));
  }

  /** Sends the response head and starts the heartbeat. */
  open(headers: Record<string, string | number | string[]>): void {
    this.res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      // no-transform: compressing proxies would otherwise hold messages back.
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    this.write('retry: 2000\n: connected\n\n');
    this.heartbeat = setInterval(() => this.write(': heartbeat\n\n'), this.limits.heartbeatMs);
  }

  /** Whether the connection still runs. */
  get isOpen(): boolean {
    return this.state !== 'closed';
  }

  /** A durable event of this organization, from the replay or the feed. */
  durable(event: StoredEvent): void {
    if (!this.wants(event.type, event.subject)) return;
    if (this.state === 'replaying') return this.hold(durableMessage(event), event.seq);
    this.sendDurable(durableMessage(event), event.seq);
  }

  /** A replayed durable event: sent now, ahead of anything held. */
  replayed(event: StoredEvent): void {
    if (this.wants(event.type, event.subject)) this.sendDurable(durableMessage(event), event.seq);
    else this.lastSeq = Math.max(this.lastSeq, event.seq);
  }

  /** A live call event of this organization. */
  live(event: CallEvent): void {
    if (!this.wants(event.type, event.callId)) return;
    if (this.state === 'replaying') return this.hold(liveMessage(event));
    this.send(liveMessage(event));
  }

  /** Tells the client its `Last-Event-ID` cannot be replayed (unknown, or older than the retention). */
  replayUnavailable(lastEventId: string): void {
    this.send({ id: null, type: 'replay_unavailable', subject: '', at: new Date().toISOString(), data: { lastEventId } });
  }

  /** Ends the replay: what arrived meanwhile goes out, then everything as it comes. */
  goLive(): void {
    if (this.state !== 'replaying') return;
    this.state = 'live';
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const { message, seq } of held) {
      if (seq === undefined) this.send(message);
      else this.sendDurable(message, seq);
    }
  }

  /** Resolves when the unsent bytes fall under half the limit (replays pace themselves by it), or false if cut. */
  async drained(): Promise<boolean> {
    while (this.state !== 'closed' && this.res.writableLength > this.limits.maxBufferedBytes / 2) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.res.off('drain', done);
          this.res.off('close', done);
          resolve();
        };
        this.res.once('drain', done);
        this.res.once('close', done);
      });
    }
    return this.state !== 'closed';
  }

  /** Ends the response; idempotent. */
  close(reason: CloseReason): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearInterval(this.heartbeat);
    this.held = [];
    // A slow client's unsent bytes are dropped with its socket; others get a clean end of stream.
    if (reason === 'slow' || reason === 'error') this.res.destroy();
    else if (!this.res.writableEnded) this.res.end();
    this.onClose(this, reason);
  }

  private wants(type: string, subject: string): boolean {
    if (this.filter.callId !== undefined && subject !== this.filter.callId) return false;
    return this.filter.types === undefined || anyTypeMatches(this.filter.types, type);
  }

  private hold(message: StreamMessage, seq?: number): void {
    this.held.push({ message, seq });
    this.heldBytes += JSON.stringify(message.data).length;
    if (this.heldBytes > this.limits.maxBufferedBytes) this.close('slow');
  }

  private sendDurable(message: StreamMessage, seq: number): void {
    if (seq <= this.lastSeq) return;
    this.lastSeq = seq;
    this.send(message);
  }

  private send(message: StreamMessage): void {
    const idLine = message.id ? `id: ${message.id}\n` : '';
    this.write(`${idLine}event: ${message.type}\ndata: ${JSON.stringify(message)}\n\n`);
  }

  private write(chunk: string): void {
    if (this.state === 'closed') return;
    this.res.write(chunk);
    // Measured once the tick is over: Node corks a response's writes until then, so a burst written in one
    // tick looks unsent even when the kernel takes it at once. What is still unsent afterwards is the client's.
    if (this.checkScheduled) return;
    this.checkScheduled = true;
    setImmediate(() => {
      this.checkScheduled = false;
      if (this.state !== 'closed' && this.res.writableLength > this.limits.maxBufferedBytes) this.close('slow');
    });
  }
}
