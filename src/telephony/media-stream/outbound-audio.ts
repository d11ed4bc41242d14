import type { TwilioOutbound } from './twilio-protocol.js';

/** 20 ms of 8 kHz mu-law. */
export const FRAME_BYTES = 160;
const FRAME_MS = 20;

type Item = { kind: 'audio'; frame: Uint8Array } | { kind: 'mark'; name: string };

/** Options for the outbound pacer. */
export interface OutboundAudioOptions {
  /** How far ahead of real time audio may be sent; Twilio buffers it, `clear` discards it. */
  leadMs?: number;
  send(msg: TwilioOutbound): void;
  now?: () => number;
}

/**
 * The agent's voice on its way to Twilio: a FIFO of 20 ms frames and marks, sent a little ahead of real
 * time. Sending everything at once would make `clear` the only way to stop speech and would let marks
 * arrive long before the audio they follow is heard; pacing keeps both honest.
 */
export class OutboundAudio {
  private readonly queue: Item[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;
  // The stream time up to which audio has been sent, in ms on the `now()` clock.
  private sentUntil = 0;
  private readonly leadMs: number;
  private readonly now: () => number;
  private partial: Uint8Array | null = null;
  private stopped = false;
  // The caller's timeline: ms of whole frames queued, and of those sent. `clear` cuts both back to what
  // was played, so positions only ever count audio the caller heard or will hear.
  private queuedUntilMs = 0;
  private sentUntilMs = 0;
  /** Frames sent since the stream began. */
  framesSent = 0;

  constructor(
    private readonly streamSid: string,
    private readonly opts: OutboundAudioOptions,
  ) {
    this.leadMs = opts.leadMs ?? 100;
    this.now = opts.now ?? (() => performance.now());
  }

  /** Frames and marks waiting to be sent. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /** Where on the caller's timeline (ms) the next queued audio will play; a short unflushed tail is not counted. */
  get queuedMs(): number {
    return this.queuedUntilMs;
  }

  /**
   * How much of the timeline (ms) the caller has heard by now. Twilio plays what it receives in real time,
   * starting at once when idle, so a frame sent for stream time `t` plays at `t`: what was sent, less what
   * is still ahead of the clock.
   */
  playedMs(): number {
    return this.sentUntilMs - Math.max(0, this.sentUntil - this.now());
  }

  /** Queues mu-law audio of any length; it is cut into 20 ms frames (a short tail waits for more audio or a mark). */
  pushAudio(mulaw: Uint8Array): void {
    if (this.stopped) return;
    let data = mulaw;
    if (this.partial) {
      const joined = new Uint8Array(this.partial.length + mulaw.length);
      joined.set(this.partial);
      joined.set(mulaw, this.partial.length);
      data = joined;
      this.partial = null;
    }
    let offset = 0;
    for (; offset + FRAME_BYTES <= data.length; offset += FRAME_BYTES) {
      this.queue.push({ kind: 'audio', frame: data.subarray(offset, offset + FRAME_BYTES) });
      this.queuedUntilMs += FRAME_MS;
    }
    if (offset < data.length) this.partial = data.slice(offset);
    this.pump();
  }

  /** Queues a mark after the audio queued so far; Twilio echoes it once that audio has played. */
  pushMark(name: string): void {
    if (this.stopped) return;
    this.flushPartial();
    this.queue.push({ kind: 'mark', name });
    this.pump();
  }

  /** Drops everything unsent and tells Twilio to drop what it has buffered (barge-in). */
  clear(): void {
    const played = this.playedMs();
    this.queuedUntilMs = played;
    this.sentUntilMs = played;
    this.queue.length = 0;
    this.head = 0;
    this.partial = null;
    this.sentUntil = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.opts.send({ event: 'clear', streamSid: this.streamSid });
  }

  /** Stops sending for good (the stream ended). */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.head = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  // A short last frame is padded with mu-law silence so every frame Twilio gets is exactly 20 ms.
  private flushPartial(): void {
    if (!this.partial) return;
    const frame = new Uint8Array(FRAME_BYTES).fill(0xff);
    frame.set(this.partial);
    this.partial = null;
    this.queue.push({ kind: 'audio', frame });
    this.queuedUntilMs += FRAME_MS;
  }

  private pump(): void {
    if (this.timer || this.stopped) return;
    const now = this.now();
    // After a quiet period playback restarts from now, not from where the last utterance ended.
    if (this.sentUntil < now) this.sentUntil = now;
    while (this.head < this.queue.length && this.sentUntil < now + this.leadMs) {
      const item = this.queue[this.head++]!;
      if (item.kind === 'mark') {
        this.opts.send({ event: 'mark', streamSid: this.streamSid, mark: { name: item.name } });
        continue;
      }
      this.opts.send({ event: 'media', streamSid: this.streamSid, media: { payload: Buffer.from(item.frame.buffer, item.frame.byteOffset, item.frame.byteLength).toString('base64') } });
      this.framesSent++;
      this.sentUntil += FRAME_MS;
      this.sentUntilMs += FRAME_MS;
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, FRAME_MS);
  }
}
