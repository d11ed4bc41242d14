import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import type { TwilioOutbound } from '../telephony/media-stream/twilio-protocol.js';

const FRAME_BYTES = 160;
const FRAME_MS = 20;

/** Options for one simulated Twilio stream. */
export interface StreamClientOptions {
  url: string;
  /** Our `<Parameter>`s, as Twilio would carry them in `start.customParameters`. */
  customParameters: Record<string, string>;
  callSid?: string;
  accountSid?: string;
  /** Observes the stream as it happens, in order (the simulator's turn accounting). */
  onEvent?: (event: StreamClientEvent) => void;
}

/** Something that happened on the Twilio side; `at` is ms since the client was created. */
export type StreamClientEvent =
  | { type: 'received'; at: number; msg: TwilioOutbound }
  /** One 20 ms frame of the agent's audio started playing. */
  | { type: 'played'; at: number; frame: Buffer }
  /** A mark went back to the server: playback reached it, or a `clear` dropped the audio before it. */
  | { type: 'mark_echoed'; at: number; name: string; cleared: boolean };

const sid = (prefix: string) => `${prefix}${randomBytes(16).toString('hex')}`;

/**
 * Twilio's side of one bidirectional Media Stream, protocol-exact: `connected` then `start`, 20 ms media
 * frames with sequence numbers, chunks and timestamps, DTMF, `stop`. The agent's audio is "played" in real
 * time: a mark is echoed only when playback reaches it, and `clear` drops unplayed audio and echoes the
 * marks it dropped, as Twilio does.
 */
export class TwilioStreamClient {
  readonly streamSid = sid('MZ');
  readonly callSid: string;
  private readonly accountSid: string;
  private ws: WebSocket | null = null;
  private seq = 0;
  private chunk = 0;
  private readonly startedAt = performance.now();
  // Agent audio not yet played, and marks waiting behind it.
  private readonly playQueue: Array<{ kind: 'audio'; frame: Buffer } | { kind: 'mark'; name: string }> = [];
  private playTimer: NodeJS.Timeout | null = null;
  /** Every message the server sent, in order, with its arrival time (ms since the client started). */
  readonly received: Array<{ at: number; msg: TwilioOutbound }> = [];
  /** The agent's audio as played (cleared audio excluded), mu-law. */
  readonly played: Buffer[] = [];
  /** Times `clear` arrived. */
  readonly clears: number[] = [];
  /** Resolves with the close code and reason when the server closes the socket. */
  closed: Promise<{ code: number; reason: string }> = Promise.resolve({ code: 0, reason: '' });

  constructor(private readonly opts: StreamClientOptions) {
    this.callSid = opts.callSid ?? sid('CA');
    this.accountSid = opts.accountSid ?? sid('AC');
  }

  /** Milliseconds since this client was created. */
  now(): number {
    return performance.now() - this.startedAt;
  }

  /** Opens the socket and sends `connected` and `start`, as Twilio does. */
  async connect(): Promise<void> {
    const ws = new WebSocket(this.opts.url);
    this.ws = ws;
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data) => this.onMessage(data.toString()));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    this.sendJson({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    this.sendJson({
      event: 'start',
      sequenceNumber: String(++this.seq),
      streamSid: this.streamSid,
      start: {
        accountSid: this.accountSid,
        streamSid: this.streamSid,
        callSid: this.callSid,
        tracks: ['inbound'],
        customParameters: this.opts.customParameters,
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
    });
  }

  /** Sends one 20 ms frame of the caller's audio. */
  sendFrame(frame: Uint8Array): void {
    this.chunk++;
    this.sendJson({
      event: 'media',
      sequenceNumber: String(++this.seq),
      streamSid: this.streamSid,
      media: { track: 'inbound', chunk: String(this.chunk), timestamp: String((this.chunk - 1) * FRAME_MS), payload: Buffer.from(frame).toString('base64') },
    });
  }

  /** Streams mu-law audio in real time, one frame every 20 ms (padded with silence to whole frames). */
  async speak(mulaw: Uint8Array, signal?: AbortSignal): Promise<void> {
    const start = performance.now();
    for (let i = 0, n = 0; i < mulaw.length; i += FRAME_BYTES, n++) {
      if (signal?.aborted) return;
      const frame = new Uint8Array(FRAME_BYTES).fill(0xff);
      frame.set(mulaw.subarray(i, i + FRAME_BYTES));
      this.sendFrame(frame);
      // Schedule against the start time so timer drift does not accumulate.
      const due = start + (n + 1) * FRAME_MS;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** Streams `ms` of silence in real time. */
  silence(ms: number, signal?: AbortSignal): Promise<void> {
    return this.speak(new Uint8Array(Math.round((ms / FRAME_MS) * FRAME_BYTES)).fill(0xff), signal);
  }

  /** Sends a DTMF key. */
  dtmf(digit: string): void {
    this.sendJson({ event: 'dtmf', sequenceNumber: String(++this.seq), streamSid: this.streamSid, dtmf: { track: 'inbound_track', digit } });
  }

  /** Sends `stop`, as Twilio does when the caller hangs up. */
  stop(): void {
    this.sendJson({ event: 'stop', sequenceNumber: String(++this.seq), streamSid: this.streamSid, stop: { accountSid: this.accountSid, callSid: this.callSid } });
  }

  /** Sends any raw text or binary frame (fuzzing). */
  sendRaw(data: string | Buffer): void {
    this.ws?.send(data);
  }

  /** Drops the socket without `stop` (a network failure). */
  drop(): void {
    this.ws?.terminate();
    this.stopPlayback();
  }

  /** Closes the socket cleanly. */
  close(): void {
    this.ws?.close();
    this.stopPlayback();
  }

  /** Waits until a message matching `test` has arrived, or fails after `timeoutMs`. */
  async waitFor(test: (msg: TwilioOutbound) => boolean, timeoutMs = 5000): Promise<TwilioOutbound> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find((r) => test(r.msg));
      if (hit) return hit.msg;
      if (performance.now() > deadline) throw new Error(`no matching message within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private sendJson(msg: unknown): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private onMessage(text: string): void {
    const msg = JSON.parse(text) as TwilioOutbound;
    const at = this.now();
    this.received.push({ at, msg });
    this.opts.onEvent?.({ type: 'received', at, msg });
    switch (msg.event) {
      case 'media':
        this.playQueue.push({ kind: 'audio', frame: Buffer.from(msg.media.payload, 'base64') });
        this.startPlayback();
        break;
      case 'mark':
        this.playQueue.push({ kind: 'mark', name: msg.mark.name });
        this.startPlayback();
        break;
      case 'clear': {
        this.clears.push(this.now());
        const marks = this.playQueue.filter((i): i is { kind: 'mark'; name: string } => i.kind === 'mark');
        this.playQueue.length = 0;
        for (const m of marks) this.echoMark(m.name, true);
        break;
      }
    }
  }

  private echoMark(name: string, cleared = false): void {
    this.sendJson({ event: 'mark', sequenceNumber: String(++this.seq), streamSid: this.streamSid, mark: { name } });
    this.opts.onEvent?.({ type: 'mark_echoed', at: this.now(), name, cleared });
  }

  // Plays one frame per 20 ms; marks at the head of the queue are echoed as soon as playback reaches them.
  private startPlayback(): void {
    if (this.playTimer) return;
    const tick = () => {
      this.playTimer = null;
      while (this.playQueue[0]?.kind === 'mark') this.echoMark((this.playQueue.shift() as { name: string }).name);
      const next = this.playQueue.shift();
      if (!next) return;
      if (next.kind === 'audio') {
        this.played.push(next.frame);
        this.opts.onEvent?.({ type: 'played', at: this.now(), frame: next.frame });
      }
      this.playTimer = setTimeout(tick, FRAME_MS);
    };
    tick();
  }

  private stopPlayback(): void {
    if (this.playTimer) clearTimeout(this.playTimer);
    this.playTimer = null;
  }
}
