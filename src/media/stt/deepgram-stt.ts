// Deepgram live transcription through the official SDK (`listen.v1`): caller mu-law straight in, transcript
// events out. The SDK's own reconnecting socket waits 1-5 s before a retry and knows nothing about the audio
// timeline, so its retries are off (`reconnectAttempts: 0`) and this stream reconnects itself: quickly,
// buffering audio meanwhile, and shifting each new connection's timestamps by the audio that came before it.
import { DeepgramClient, type Deepgram } from '@deepgram/sdk';
import { ProviderError } from '../../shared/errors.js';
import type { SttEvent, SttOptions, SttProvider, SttStream } from '../providers.js';
import { AsyncQueue } from '../../shared/async-queue.js';
import { FrameAssembler } from '../audio/frames.js';

const PROVIDER = 'deepgram';
const SAMPLE_RATE = 8000;
/**
 * Caller audio goes out in 100 ms messages, not one per 20 ms frame: each WebSocket message is a masked
 * frame and a socket write on the main thread, and at 50 calls the per-frame sends were the largest share
 * of its busy time. Deepgram recommends 20-250 ms per message. Finalize and CloseStream send the partial
 * batch first, so the turn's final transcript waits for no batching; Twilio sends a frame every 20 ms, so
 * a batch never waits more than 80 ms for the rest of it.
 */
const BATCH_BYTES = SAMPLE_RATE / 10;
/** Audio kept while the socket is not open; past this the oldest audio is dropped (the timeline still counts it). */
const MAX_PENDING_BYTES = 30 * SAMPLE_RATE;
/** First reconnect delay; it doubles on each further attempt (100, 200, 400 ms ...). */
const RECONNECT_BASE_MS = 100;
const CONNECT_TIMEOUT_S = 10;
/** After CloseStream Deepgram closes within moments; a server that never does must not hold the call open. */
const END_TIMEOUT_MS = 10_000;
/** `ws` reports a refused upgrade only through this error message. */
const REFUSED_UPGRADE = /Unexpected server response: (\d{3})/;

/** Settings for the Deepgram provider. */
export interface DeepgramSttOptions {
  /** Sent as `Authorization: Token <apiKey>`. */
  apiKey: string;
  /** WebSocket base URL, e.g. `ws://127.0.0.1:PORT` for a local server (default: Deepgram's production API). */
  baseUrl?: string;
  /** Interval of `KeepAlive` messages while the socket is open (default 5000; Deepgram drops idle sockets at ~10 s). */
  keepAliveMs?: number;
  /** Reconnect attempts after the connection fails unexpectedly, before iteration throws (default 3). */
  maxReconnects?: number;
  /** Deepgram `utterance_end_ms`: the word gap that produces an `utterance_end` event (default 1000). */
  utteranceEndMs?: number;
}

/** Streaming speech-to-text with Deepgram's live API. */
export class DeepgramStt implements SttProvider {
  readonly name = PROVIDER;
  private readonly client: DeepgramClient;
  private readonly keepAliveMs: number;
  private readonly maxReconnects: number;
  private readonly utteranceEndMs: number;

  constructor(options: DeepgramSttOptions) {
    this.client = new DeepgramClient({ apiKey: options.apiKey, ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}) });
    this.keepAliveMs = options.keepAliveMs ?? 5000;
    this.maxReconnects = options.maxReconnects ?? 3;
    this.utteranceEndMs = options.utteranceEndMs ?? 1000;
  }

  /** Opens the socket at once; audio pushed before it is open is buffered. */
  stream(options: SttOptions): SttStream {
    const connect = () =>
      this.client.listen.v1.connect({
        model: options.model,
        language: options.language,
        encoding: 'mulaw',
        sample_rate: SAMPLE_RATE,
        channels: 1,
        interim_results: 'true',
        endpointing: options.endpointingMs,
        utterance_end_ms: this.utteranceEndMs,
        vad_events: 'true',
        smart_format: 'true',
        punctuate: 'true',
        reconnectAttempts: 0,
        connectionTimeoutInSeconds: CONNECT_TIMEOUT_S,
      });
    return new DeepgramSttStream(connect, options.signal, this.keepAliveMs, this.maxReconnects);
  }
}

type ListenSocket = Awaited<ReturnType<DeepgramClient['listen']['v1']['connect']>>;

/** Why a connection went away: the close and/or error the SDK reported in the same turn. */
interface Loss {
  code?: number;
  reason?: string;
  error?: Error;
}

type State = 'connecting' | 'open' | 'reconnecting' | 'ending' | 'closed';

/** One call's Deepgram stream. Breaking out of its iteration closes it. */
class DeepgramSttStream implements SttStream {
  readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (error: Error) => void;
  private readonly events = new AsyncQueue<SttEvent>(() => this.close());
  private state: State = 'connecting';
  private socket: ListenSocket | undefined;
  /** Bumped whenever a socket stops being current, so its late events are ignored. */
  private generation = 0;
  private loss: Loss | undefined;
  private everOpened = false;
  private reconnects = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** Regroups audio for the open socket into BATCH_BYTES messages. */
  private readonly batcher = FrameAssembler.mulaw(BATCH_BYTES);
  private sentBytes = 0;
  /** Audio bytes before the next byte to be sent: sent ones plus any dropped from a full buffer. */
  private timelineBytes = 0;
  /** Audio seconds before the current connection's time zero. */
  private offsetSeconds = 0;
  private inputEnded = false;
  private finalizeOwed = false;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private endTimer: NodeJS.Timeout | undefined;
  private readonly onAbort = () => this.close();

  constructor(
    private readonly connectSocket: () => Promise<ListenSocket>,
    private readonly signal: AbortSignal,
    private readonly keepAliveMs: number,
    private readonly maxReconnects: number,
  ) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Nobody has to await `ready`; the failure still reaches whoever iterates.
    this.ready.catch(() => {});
    if (signal.aborted) {
      this.finish();
      return;
    }
    signal.addEventListener('abort', this.onAbort, { once: true });
    void this.connect();
  }

  get audioSeconds(): number {
    return this.sentBytes / SAMPLE_RATE;
  }

  push(mulaw: Uint8Array): void {
    if (this.state === 'closed' || this.inputEnded || mulaw.length === 0) return;
    if (this.state === 'open' && this.pending.length === 0) return this.batchAudio(mulaw);
    // The caller may reuse its buffer once push returns.
    this.buffer(mulaw.slice());
  }

  flush(): void {
    if (this.state === 'closed' || this.inputEnded) return;
    if (this.state !== 'open' || !this.sendBatch() || !this.control({ type: 'Finalize' })) this.finalizeOwed = true;
  }

  endInput(): void {
    if (this.state === 'closed' || this.inputEnded) return;
    this.inputEnded = true;
    if (this.state === 'open' && this.sendBatch()) this.sendCloseStream();
  }

  close(): void {
    if (this.state !== 'closed') this.finish();
  }

  [Symbol.asyncIterator](): AsyncIterator<SttEvent> {
    return this.events[Symbol.asyncIterator]();
  }

  private async connect(): Promise<void> {
    const generation = ++this.generation;
    this.loss = undefined;
    let socket: ListenSocket;
    try {
      socket = await this.connectSocket();
    } catch (error) {
      this.lost(generation, { error: error instanceof Error ? error : new Error(String(error)) });
      return;
    }
    if (generation !== this.generation) {
      socket.close();
      return;
    }
    this.socket = socket;
    socket.on('open', () => this.onOpen(generation));
    socket.on('message', (message: unknown) => this.message(generation, message));
    socket.on('close', (event) => this.lost(generation, { code: event.code, reason: event.reason }));
    socket.on('error', (error) => this.lost(generation, { error }));
    socket.connect();
  }

  private onOpen(generation: number): void {
    if (generation !== this.generation) return;
    this.state = 'open';
    this.offsetSeconds = this.timelineBytes / SAMPLE_RATE;
    if (!this.everOpened) {
      this.everOpened = true;
      this.resolveReady();
    }
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (let i = 0; i < pending.length; i++) {
      if (!this.sendAudio(pending[i]!)) {
        // The socket died between open and now; keep the rest for the next connection.
        for (const chunk of pending.slice(i)) this.buffer(chunk);
        return;
      }
    }
    if (this.finalizeOwed && this.control({ type: 'Finalize' })) this.finalizeOwed = false;
    if (this.inputEnded) return this.sendCloseStream();
    this.keepAliveTimer = setInterval(() => this.control({ type: 'KeepAlive' }), this.keepAliveMs);
  }

  private message(generation: number, message: unknown): void {
    if (generation !== this.generation || typeof message !== 'object' || message === null) return;
    // A connection that delivers is healthy: later failures get a fresh set of reconnects.
    this.reconnects = 0;
    const type = (message as { type?: unknown }).type;
    if (type === 'Results') this.results(message as Deepgram.listen.ListenV1Results);
    else if (type === 'SpeechStarted') {
      const { timestamp } = message as Deepgram.listen.ListenV1SpeechStarted;
      this.events.push({ kind: 'speech_started', at: this.time(timestamp) });
    } else if (type === 'UtteranceEnd') {
      const { last_word_end: lastWordEnd } = message as Deepgram.listen.ListenV1UtteranceEnd;
      this.events.push(
        typeof lastWordEnd === 'number' && lastWordEnd >= 0
          ? { kind: 'utterance_end', lastWordEnd: this.time(lastWordEnd) }
          : { kind: 'utterance_end' },
      );
    }
    // Metadata (sent before a normal close) carries nothing the engine needs.
  }

  private results(message: Deepgram.listen.ListenV1Results): void {
    const alternative = message.channel?.alternatives?.[0];
    const text = alternative?.transcript ?? '';
    const start = this.time(message.start);
    const end = this.time(message.start + message.duration);
    if (!message.is_final) {
      if (text) this.events.push({ kind: 'interim', text, start, end });
      return;
    }
    const speechFinal = message.speech_final === true;
    // Deepgram sends empty finals for silence; an empty one still matters when it carries the endpoint,
    // or answers a Finalize: then it says that everything up to its end has been transcribed.
    if (!text && !speechFinal && message.from_finalize !== true) return;
    this.events.push({
      kind: 'final',
      text,
      start,
      end,
      speechFinal,
      ...(alternative && text ? { confidence: alternative.confidence } : {}),
    });
  }

  /** Seconds since the stream began, from a time on the current connection. */
  private time(connectionSeconds: number): number {
    return Math.round((this.offsetSeconds + connectionSeconds) * 1000) / 1000;
  }

  /**
   * The SDK reports a lost connection as a close and then, in the same turn, the error that caused it (a
   * refused upgrade is a close 1000 followed by "Unexpected server response: 401"), so decide a turn later.
   */
  private lost(generation: number, loss: Loss): void {
    if (generation !== this.generation || this.state === 'closed') return;
    const first = this.loss === undefined;
    this.loss = { ...this.loss, ...loss };
    if (first) queueMicrotask(() => this.afterLoss(generation));
  }

  private afterLoss(generation: number): void {
    if (generation !== this.generation || this.state === 'closed') return;
    const loss = this.loss ?? {};
    this.loss = undefined;
    const wasEnding = this.state === 'ending';
    this.dropSocket();
    if (wasEnding) return this.finish();

    const status = loss.error && REFUSED_UPGRADE.exec(loss.error.message)?.[1];
    const httpStatus = status ? Number(status) : undefined;
    if (httpStatus !== undefined && !ProviderError.isRetryableStatus(httpStatus)) {
      return this.finish(new ProviderError(PROVIDER, `Deepgram refused the connection with HTTP ${httpStatus}`, false, httpStatus, { cause: loss.error }));
    }
    if (this.reconnects >= this.maxReconnects) {
      const attempts = this.maxReconnects === 1 ? '1 reconnect' : `${this.maxReconnects} reconnects`;
      return this.finish(
        new ProviderError(PROVIDER, `Deepgram connection failed (${describe(loss)}) after ${attempts}`, true, httpStatus, { cause: loss.error }),
      );
    }
    const delay = RECONNECT_BASE_MS * 2 ** this.reconnects;
    this.reconnects++;
    this.state = 'reconnecting';
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }

  // Sends each batch the audio completes (the assembler copies, so the caller may reuse its buffer); when the
  // socket refuses one, it and everything after it wait in `pending` for the next connection.
  private batchAudio(mulaw: Uint8Array): void {
    const batches = this.batcher.push(mulaw);
    for (const [i, batch] of batches.entries()) {
      if (this.sendAudio(batch)) continue;
      for (const rest of batches.slice(i)) this.buffer(rest);
      this.bufferPartialBatch();
      return;
    }
  }

  // Sends the partial batch now; when the socket refuses it, it waits in `pending` for the next connection.
  private sendBatch(): boolean {
    const audio = this.batcher.takePartial();
    if (!audio || this.sendAudio(audio)) return true;
    this.buffer(audio);
    return false;
  }

  private bufferPartialBatch(): void {
    const partial = this.batcher.takePartial();
    if (partial) this.buffer(partial);
  }

  private sendAudio(bytes: Uint8Array): boolean {
    try {
      this.socket!.sendMedia(bytes);
    } catch {
      // Not open after all (closing, or closed with the event not yet delivered).
      return false;
    }
    this.sentBytes += bytes.length;
    this.timelineBytes += bytes.length;
    return true;
  }

  private control(message: { type: 'KeepAlive' | 'Finalize' | 'CloseStream' }): boolean {
    const socket = this.socket;
    if (!socket) return false;
    try {
      if (message.type === 'KeepAlive') socket.sendKeepAlive(message);
      else if (message.type === 'Finalize') socket.sendFinalize(message);
      else socket.sendCloseStream(message);
      return true;
    } catch {
      return false;
    }
  }

  /** Asks Deepgram to finish; the iteration ends when it closes the socket (or after END_TIMEOUT_MS). */
  private sendCloseStream(): void {
    clearInterval(this.keepAliveTimer);
    // If this fails the socket is going away; the close event reconnects and we try again on open.
    if (!this.control({ type: 'CloseStream' })) return;
    this.state = 'ending';
    this.endTimer = setTimeout(() => this.finish(), END_TIMEOUT_MS);
  }

  private buffer(chunk: Uint8Array): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    while (this.pendingBytes > MAX_PENDING_BYTES) {
      const excess = this.pendingBytes - MAX_PENDING_BYTES;
      const head = this.pending[0]!;
      const dropped = Math.min(excess, head.length);
      if (dropped === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(dropped);
      this.pendingBytes -= dropped;
      this.timelineBytes += dropped;
    }
  }

  private dropSocket(): void {
    clearInterval(this.keepAliveTimer);
    // Not sent on this socket: it goes first on the next one, ahead of audio pushed while reconnecting.
    this.bufferPartialBatch();
    const socket = this.socket;
    this.socket = undefined;
    this.generation++;
    try {
      socket?.close();
    } catch {
      // Already closed.
    }
  }

  private finish(error?: ProviderError): void {
    this.state = 'closed';
    this.dropSocket();
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.endTimer);
    this.pending = [];
    this.pendingBytes = 0;
    this.signal.removeEventListener('abort', this.onAbort);
    if (!this.everOpened) this.rejectReady(error ?? new DOMException('the stream closed before its connection opened', 'AbortError'));
    if (error) this.events.fail(error);
    else this.events.end();
  }
}

function describe(loss: Loss): string {
  if (loss.error) return loss.error.message;
  return `closed with ${loss.code ?? 'no code'}${loss.reason ? `: ${loss.reason}` : ''}`;
}
