// A local stand-in for Deepgram's live transcription WebSocket (`/v1/listen`), speaking the real wire
// protocol: `Authorization: Token <key>` (or the `token` subprotocol browsers use), HTTP errors on a refused
// upgrade, binary audio frames in, JSON control messages (`KeepAlive`, `Finalize`, `CloseStream`) in, and
// `Results` / `SpeechStarted` / `UtteranceEnd` / `Metadata` out in Deepgram's exact JSON shapes, so the
// official SDK runs unmodified against it.
//
// It does not recognise speech: it finds utterances by energy and says what the test scripted for each one.
// Segmentation runs on audio time (bytes received), so tests may push faster than real time; only the idle
// timeout, `closeAfterMs` and `finalDelayMs` use the wall clock.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
// Speech is a 20 ms frame above -35 dBFS, the level rule the simulator and the engine use too. The noise
// fixture (white noise, -39 dBFS RMS) peaks at -38 dBFS per frame; espeak's quieter consonants fall inside hangover.
import { isVoiced } from '../../src/media/audio/speech-level.js';

const SAMPLE_RATE = 8000;
const FRAME_BYTES = 160;
const FRAME_SECONDS = FRAME_BYTES / SAMPLE_RATE;
/** Audio seconds between interim results while someone speaks (Deepgram sends them about this often). */
const INTERIM_INTERVAL_S = 0.5;
/** How fast interim results reveal the scripted words (espeak fixtures speak at about 4 words a second). */
const WORDS_PER_SECOND = 3;
/** Audio seconds of silence after which the fake sends an empty final, as Deepgram does for quiet audio. */
const SILENCE_RESULT_S = 1;
/** Deepgram's default `endpointing` when the query leaves it out. */
const DEFAULT_ENDPOINTING_MS = 10;
const LISTEN_PATH = '/v1/listen';
const MODEL_UUID = '1abfe86b-e047-4eed-858a-35e5625b41ee';
const MODEL_INFO = { name: '2-general-nova', version: '2024-01-18.26916', arch: 'nova-3' } as const;
/** Close reason Deepgram uses when a socket idles (its docs call the error NET-0001). */
const IDLE_REASON = 'NET-0001: Deepgram did not receive audio data or a text message within the timeout window.';

/** Behaviour of the fake; every field can be changed between connections with `setOptions`. */
export interface FakeDeepgramOptions {
  /** The only API key accepted (default `test-deepgram-key`); anything else gets HTTP 401 on upgrade. */
  apiKey?: string;
  /** What each successive utterance "said" (cycled when an array); the index counts across connections. */
  transcripts?: readonly string[] | ((utteranceIndex: number) => string);
  /**
   * Extra wall-clock delay before every final `Results`, as provider latency (default 0); a function is asked
   * per final, with whether a `Finalize` asked for it and how much audio has passed since its last speech.
   */
  finalDelayMs?: number | ((final: FinalTiming) => number);
  /** Refuse the next `count` upgrades with this HTTP status and a Deepgram-style error body. */
  rejectConnections?: { count: number; status: number };
  /** Close each connection with 1011 this many wall-clock ms after it opens. */
  closeAfterMs?: number;
  /** Close a connection with 1011 (NET-0001) after this long without audio or a text message (default 10000). */
  idleTimeoutMs?: number;
}

/** What a `finalDelayMs` function is told about the final it delays. */
export interface FinalTiming {
  fromFinalize: boolean;
  /** Audio ms between the end of the utterance's last speech and now (0 for an empty final). */
  afterSpeechMs: number;
}

/** One accepted WebSocket connection, as the fake saw it. */
export interface FakeDeepgramConnection {
  /** 1-based, in order of acceptance. */
  readonly id: number;
  /** The upgrade request's query parameters. */
  readonly query: Record<string, string>;
  /** How the client authenticated. */
  readonly auth: 'header' | 'subprotocol';
  /** Bytes of binary audio received. */
  readonly audioBytes: number;
  /** `{"type":"KeepAlive"}` messages received. */
  readonly keepAlives: number;
  /** `{"type":"Finalize"}` messages received. */
  readonly finalizes: number;
  /** `{"type":"CloseStream"}` messages (or empty binary frames) received. */
  readonly closeStreams: number;
  /** Every JSON message the fake sent, in order. */
  readonly sent: readonly DeepgramServerMessage[];
  /** True once the socket is closed, by either side. */
  readonly closed: boolean;
  /** The close code, once closed (1006 when the connection was dropped without a close frame). */
  readonly closeCode: number | undefined;
}

/** A running fake Deepgram server. */
export interface FakeDeepgram {
  /** Base URL for the SDK's `baseUrl` option: `ws://127.0.0.1:PORT` (the SDK appends `/v1/listen`). */
  readonly url: string;
  /** Accepted connections, in order (refused upgrades are not here; see `rejected`). */
  readonly connections: readonly FakeDeepgramConnection[];
  /** Upgrades refused with an HTTP error (bad key, `rejectConnections`, bad query). */
  readonly rejected: number;
  /** Audio bytes received over all connections. */
  readonly audioBytes: number;
  /** KeepAlive, Finalize and CloseStream messages received over all connections. */
  readonly keepAlives: number;
  readonly finalizes: number;
  readonly closeStreams: number;
  /** Merges new options into the current ones (`rejectConnections: undefined` clears a refusal). */
  setOptions(partial: Partial<FakeDeepgramOptions>): void;
  /** Destroys every live connection without a close frame, as a network failure would (client sees 1006). */
  dropConnections(): void;
  close(): Promise<void>;
}

/** A word as Deepgram reports it. */
export interface DeepgramWord {
  word: string;
  start: number;
  end: number;
  confidence: number;
  punctuated_word: string;
}

/** Deepgram's `Results` message. */
export interface DeepgramResults {
  type: 'Results';
  channel_index: [number, number];
  duration: number;
  start: number;
  is_final: boolean;
  speech_final: boolean;
  from_finalize: boolean;
  channel: { alternatives: { transcript: string; confidence: number; words: DeepgramWord[] }[] };
  metadata: { request_id: string; model_info: typeof MODEL_INFO; model_uuid: string };
}

/** Every message the fake sends, in Deepgram's shapes. */
export type DeepgramServerMessage =
  | DeepgramResults
  | { type: 'SpeechStarted'; channel: [number]; timestamp: number }
  | { type: 'UtteranceEnd'; channel: [number, number]; last_word_end: number }
  | {
      type: 'Metadata';
      transaction_key: string;
      request_id: string;
      sha256: string;
      created: string;
      duration: number;
      channels: number;
      models: string[];
      model_info: Record<string, typeof MODEL_INFO>;
    };

/** Starts the fake on 127.0.0.1 with an OS-assigned port. */
export async function startFakeDeepgram(initial: FakeDeepgramOptions = {}): Promise<FakeDeepgram> {
  let options: FakeDeepgramOptions = { ...initial };
  let rejectRemaining = initial.rejectConnections?.count ?? 0;
  let rejected = 0;
  let utteranceCounter = 0;
  const connections: ConnectionState[] = [];

  const script: Script = {
    nextTranscript() {
      const index = utteranceCounter++;
      const transcripts = options.transcripts ?? ['hello'];
      if (typeof transcripts === 'function') return transcripts(index);
      return transcripts.length === 0 ? '' : transcripts[index % transcripts.length]!;
    },
    finalDelayMs: (final) => (typeof options.finalDelayMs === 'function' ? options.finalDelayMs(final) : (options.finalDelayMs ?? 0)),
  };

  const wss = new WebSocketServer({
    noServer: true,
    // Browsers authenticate with `Sec-WebSocket-Protocol: token, <key>`; the server must echo `token`.
    handleProtocols: (protocols) => (protocols.has('token') ? 'token' : false),
  });
  const server: Server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ err_code: 'NOT_FOUND', err_msg: 'Not found' }));
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== LISTEN_PATH) return refuse(socket, 404, 'NOT_FOUND', `no WebSocket endpoint at ${url.pathname}`);
    if (rejectRemaining > 0 && options.rejectConnections) {
      rejectRemaining--;
      return refuse(socket, options.rejectConnections.status, 'REFUSED', 'refused by the fake (rejectConnections)');
    }
    const auth = authenticate(req, options.apiKey ?? 'test-deepgram-key');
    if (!auth) return refuse(socket, 401, 'INVALID_AUTH', 'Invalid credentials.');
    const query = Object.fromEntries(url.searchParams);
    // The fake only decodes telephone audio; a real server would accept more, but a mismatch here is a bug.
    if (query.encoding !== 'mulaw' || query.sample_rate !== '8000') {
      return refuse(socket, 400, 'INVALID_QUERY_PARAMETER', 'the fake accepts only encoding=mulaw&sample_rate=8000');
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      connections.push(new ConnectionState(connections.length + 1, ws, query, auth, script, options));
    });
  });

  function refuse(socket: Duplex, status: number, code: string, message: string): void {
    rejected++;
    const body = JSON.stringify({ err_code: code, err_msg: message, request_id: randomUUID() });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
        `content-type: application/json\r\ndg-error: ${message}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `connection: close\r\n\r\n${body}`,
    );
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const sum = (pick: (c: ConnectionState) => number) => connections.reduce((total, c) => total + pick(c), 0);

  return {
    url: `ws://127.0.0.1:${port}`,
    connections,
    get rejected() {
      return rejected;
    },
    get audioBytes() {
      return sum((c) => c.audioBytes);
    },
    get keepAlives() {
      return sum((c) => c.keepAlives);
    },
    get finalizes() {
      return sum((c) => c.finalizes);
    },
    get closeStreams() {
      return sum((c) => c.closeStreams);
    },
    setOptions(partial) {
      options = { ...options, ...partial };
      if ('rejectConnections' in partial) rejectRemaining = partial.rejectConnections?.count ?? 0;
      for (const c of connections) c.options = options;
    },
    dropConnections() {
      for (const c of connections) c.drop();
    },
    async close() {
      for (const c of connections) c.drop();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The key from `Authorization: Token <key>` or from the `token, <key>` subprotocol pair, checked. */
function authenticate(req: IncomingMessage, apiKey: string): 'header' | 'subprotocol' | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const match = /^token\s+(.+)$/i.exec(header.trim());
    return match?.[1] === apiKey ? 'header' : undefined;
  }
  const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const at = protocols.indexOf('token');
  return at >= 0 && protocols[at + 1] === apiKey ? 'subprotocol' : undefined;
}

/** What connections share: the utterance script and the latency setting. */
interface Script {
  nextTranscript(): string;
  finalDelayMs(final: FinalTiming): number;
}

/** The utterance in progress: `speaking` until endpointing, or `finalized` by a Finalize mid-speech. */
interface Utterance {
  state: 'speaking' | 'finalized';
  start: number;
  lastSpeechEnd: number;
  tokens: string[];
  revealed: number;
  nextInterimAt: number;
}

/** One connection: counts what arrives, segments the audio and answers like Deepgram. */
class ConnectionState implements FakeDeepgramConnection {
  audioBytes = 0;
  keepAlives = 0;
  finalizes = 0;
  closeStreams = 0;
  closed = false;
  closeCode: number | undefined;
  readonly sent: DeepgramServerMessage[] = [];

  private readonly requestId = randomUUID();
  private readonly sha256: Hash = createHash('sha256');
  private readonly endpointingS: number;
  private readonly utteranceEndS: number | undefined;
  private readonly interim: boolean;
  private readonly vadEvents: boolean;
  private readonly punctuate: boolean;
  /** Bytes of an incomplete 20 ms frame carried to the next message. */
  private carry = new Uint8Array(0);
  /** Audio seconds fully segmented so far. */
  private now = 0;
  private utterance: Utterance | undefined;
  /** End of the last finalized word, while an UtteranceEnd for it is still owed. */
  private owedUtteranceEnd: number | undefined;
  /** Start of the current stretch of audio not yet covered by any final. */
  private uncoveredFrom = 0;
  private ending = false;
  /** Sends go through one chain so a delayed final never overtakes what came before it. */
  private outbox: Promise<void> = Promise.resolve();
  private idleTimer: NodeJS.Timeout | undefined;
  private lifeTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: number,
    private readonly ws: WebSocket,
    readonly query: Record<string, string>,
    readonly auth: 'header' | 'subprotocol',
    private readonly script: Script,
    public options: FakeDeepgramOptions,
  ) {
    const endpointing = query.endpointing;
    this.endpointingS = endpointing === 'false' ? Infinity : Number(endpointing ?? DEFAULT_ENDPOINTING_MS) / 1000;
    this.utteranceEndS = query.utterance_end_ms === undefined ? undefined : Number(query.utterance_end_ms) / 1000;
    this.interim = query.interim_results === 'true';
    this.vadEvents = query.vad_events === 'true';
    this.punctuate = query.punctuate === 'true' || query.smart_format === 'true';

    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code) => {
      this.closed = true;
      this.closeCode = code;
      clearTimeout(this.idleTimer);
      clearTimeout(this.lifeTimer);
    });
    ws.on('error', () => {});
    this.armIdleTimer();
    if (options.closeAfterMs !== undefined) {
      this.lifeTimer = setTimeout(() => this.ws.close(1011, 'fake: closeAfterMs elapsed'), options.closeAfterMs);
    }
  }

  /** Destroys the socket without a close frame. */
  drop(): void {
    if (!this.closed) this.ws.terminate();
  }

  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.ws.close(1011, IDLE_REASON), this.options.idleTimeoutMs ?? 10_000);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.ending) return;
    this.armIdleTimer();
    const bytes = toBytes(data);
    if (isBinary) {
      // A zero-byte binary message is Deepgram's legacy way of saying CloseStream.
      if (bytes.length === 0) return this.closeStream();
      this.audioBytes += bytes.length;
      this.sha256.update(bytes);
      return this.segment(bytes);
    }
    let type: unknown;
    try {
      type = (JSON.parse(Buffer.from(bytes).toString('utf8')) as { type?: unknown }).type;
    } catch {
      return;
    }
    if (type === 'KeepAlive') this.keepAlives++;
    else if (type === 'Finalize') this.finalize();
    else if (type === 'CloseStream') this.closeStream();
  }

  private segment(bytes: Uint8Array): void {
    let audio = bytes;
    if (this.carry.length > 0) {
      audio = new Uint8Array(this.carry.length + bytes.length);
      audio.set(this.carry);
      audio.set(bytes, this.carry.length);
    }
    let offset = 0;
    for (; offset + FRAME_BYTES <= audio.length; offset += FRAME_BYTES) {
      this.frame(isVoiced(audio, offset, offset + FRAME_BYTES));
    }
    this.carry = audio.slice(offset);
  }

  /** Advances one 20 ms frame of audio time. */
  private frame(speech: boolean): void {
    const start = this.now;
    const end = (this.now = round(start + FRAME_SECONDS));
    const u = this.utterance;
    if (!u) {
      if (speech) return this.startUtterance(start, end);
      if (this.owedUtteranceEnd !== undefined && this.utteranceEndS !== undefined && end - this.owedUtteranceEnd >= this.utteranceEndS) {
        this.send({ type: 'UtteranceEnd', channel: [0, 1], last_word_end: this.owedUtteranceEnd });
        this.owedUtteranceEnd = undefined;
      }
      if (end - this.uncoveredFrom >= SILENCE_RESULT_S) this.sendEmptyFinal(false, false);
      return;
    }
    if (speech) {
      u.lastSpeechEnd = end;
      if (u.state === 'speaking' && this.interim && end >= u.nextInterimAt) {
        u.revealed = Math.min(u.tokens.length, Math.max(u.revealed + 1, Math.floor((end - u.start) * WORDS_PER_SECOND)));
        u.nextInterimAt = round(u.nextInterimAt + INTERIM_INTERVAL_S);
        this.send(this.results(u.tokens.slice(0, u.revealed), u.start, u.lastSpeechEnd, this.uncoveredFrom, end, false, false, false));
      }
      return;
    }
    if (end - u.lastSpeechEnd < this.endpointingS) return;
    this.utterance = undefined;
    if (u.state === 'speaking') this.finalUtterance(u, true, false);
    // After a Finalize the words are out already; the endpoint still comes, as an empty speech_final.
    else this.sendEmptyFinal(true, false);
  }

  private startUtterance(start: number, end: number): void {
    const tokens = this.script.nextTranscript().split(/\s+/).filter((t) => t.length > 0);
    this.utterance = { state: 'speaking', start, lastSpeechEnd: end, tokens, revealed: 0, nextInterimAt: round(start + INTERIM_INTERVAL_S) };
    // Speech resuming within utterance_end_ms means the previous utterance had not ended after all.
    this.owedUtteranceEnd = undefined;
    if (this.vadEvents) this.send({ type: 'SpeechStarted', channel: [0], timestamp: start });
  }

  /** The final for a whole utterance: all its words, spread evenly over the speech. */
  private finalUtterance(u: Utterance, speechFinal: boolean, fromFinalize: boolean): void {
    const message = this.results(u.tokens, u.start, u.lastSpeechEnd, this.uncoveredFrom, this.now, true, speechFinal, fromFinalize);
    this.uncoveredFrom = this.now;
    if (u.tokens.length > 0) this.owedUtteranceEnd = u.lastSpeechEnd;
    this.send(message, this.script.finalDelayMs({ fromFinalize, afterSpeechMs: Math.max(0, (this.now - u.lastSpeechEnd) * 1000) }));
  }

  private sendEmptyFinal(speechFinal: boolean, fromFinalize: boolean): void {
    const message = this.results([], 0, 0, this.uncoveredFrom, this.now, true, speechFinal, fromFinalize);
    this.uncoveredFrom = this.now;
    this.send(message, this.script.finalDelayMs({ fromFinalize, afterSpeechMs: 0 }));
  }

  private finalize(): void {
    this.finalizes++;
    const u = this.utterance;
    if (u?.state === 'speaking') {
      u.state = 'finalized';
      this.finalUtterance(u, false, true);
    } else {
      this.sendEmptyFinal(false, true);
    }
  }

  private closeStream(): void {
    this.closeStreams++;
    this.ending = true;
    const u = this.utterance;
    this.utterance = undefined;
    if (u?.state === 'speaking') this.finalUtterance(u, false, false);
    const duration = round(this.audioBytes / SAMPLE_RATE);
    this.send({
      type: 'Metadata',
      transaction_key: 'deprecated',
      request_id: this.requestId,
      sha256: this.sha256.digest('hex'),
      created: new Date().toISOString(),
      duration,
      channels: 1,
      models: [MODEL_UUID],
      model_info: { [MODEL_UUID]: MODEL_INFO },
    });
    this.outbox = this.outbox.then(() => {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    });
  }

  /** A `Results` message; words are spread evenly over [speechStart, speechEnd]. */
  private results(
    tokens: readonly string[],
    speechStart: number,
    speechEnd: number,
    start: number,
    end: number,
    isFinal: boolean,
    speechFinal: boolean,
    fromFinalize: boolean,
  ): DeepgramResults {
    const step = tokens.length > 0 ? (speechEnd - speechStart) / tokens.length : 0;
    const words: DeepgramWord[] = tokens.map((token, i) => ({
      word: bare(token),
      start: round(speechStart + i * step),
      end: round(speechStart + (i + 1) * step),
      confidence: 0.98,
      punctuated_word: token,
    }));
    const transcript = this.punctuate ? tokens.join(' ') : tokens.map(bare).join(' ');
    return {
      type: 'Results',
      channel_index: [0, 1],
      duration: round(end - start),
      start: round(start),
      is_final: isFinal,
      speech_final: speechFinal,
      from_finalize: fromFinalize,
      channel: { alternatives: [{ transcript, confidence: tokens.length > 0 ? 0.98 : 0, words }] },
      metadata: { request_id: this.requestId, model_info: MODEL_INFO, model_uuid: MODEL_UUID },
    };
  }

  private send(message: DeepgramServerMessage, delayMs = 0): void {
    this.outbox = this.outbox.then(async () => {
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (this.ws.readyState !== WebSocket.OPEN) return;
      this.sent.push(message);
      this.ws.send(JSON.stringify(message));
    });
  }
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

/** A word without punctuation, lower-cased, as Deepgram's `word` field has it. */
const bare = (token: string): string => token.replace(/[^\p{L}\p{N}']/gu, '').toLowerCase();

/** Millisecond precision keeps float drift out of the timestamps. */
const round = (seconds: number): number => Math.round(seconds * 1000) / 1000;
