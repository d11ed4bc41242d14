// A local stand-in for ElevenLabs' streaming text-to-speech endpoint, speaking the real wire protocol
// (path, `xi-api-key`, query parameters, snake_case JSON body, `{"detail":{...}}` errors, chunked audio), so
// the official SDK runs unmodified against it. It only synthesizes `ulaw_8000`: a quiet deterministic tone
// whose length follows the text (60 ms a character), so tests can assert byte counts. The `/with-timestamps`
// variant streams the same audio as newline-delimited JSON with each character's start and end time.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeMulawSample } from '../../src/media/audio/mulaw.js';

const SAMPLE_RATE = 8000;
const MS_PER_CHARACTER = 60;
const MIN_AUDIO_MS = 200;
const CHUNK_MS = 100;
const CHUNK_BYTES = (SAMPLE_RATE * CHUNK_MS) / 1000;
const TONE_HZ = 440;
/** About -26 dBFS: audible in a recording, quiet enough not to matter if it reaches a speaker. */
const TONE_AMPLITUDE = 1600;
/** Every `output_format` the real API accepts on this endpoint. */
const OUTPUT_FORMATS = new Set([
  'mp3_22050_32', 'mp3_24000_48', 'mp3_44100_32', 'mp3_44100_64', 'mp3_44100_96', 'mp3_44100_128', 'mp3_44100_192',
  'pcm_8000', 'pcm_16000', 'pcm_22050', 'pcm_24000', 'pcm_32000', 'pcm_44100', 'pcm_48000',
  'ulaw_8000', 'alaw_8000',
  'opus_48000_32', 'opus_48000_64', 'opus_48000_96', 'opus_48000_128', 'opus_48000_192',
]);
/** ElevenLabs' accepted `voice_settings.speed` range. */
const SPEED_MIN = 0.7;
const SPEED_MAX = 1.2;
const STREAM_PATH = /^\/v1\/text-to-speech\/([^/]+)\/stream(\/with-timestamps)?$/;

/** Behaviour of the fake; every field can be changed between requests with `setOptions`. */
export interface FakeElevenLabsOptions {
  /** The only `xi-api-key` accepted (default `test-elevenlabs-key`). */
  apiKey?: string;
  /** Known voice ids; any other gets 404 `voice_not_found`. Omitted: every voice id exists. */
  voices?: readonly string[];
  /** Delay before the response headers and first audio chunk (default 0); a function is asked per request. */
  firstByteDelayMs?: number | (() => number);
  /** Delay between audio chunks (default 0). */
  chunkDelayMs?: number;
  /** Answer the next `times` requests (every request when omitted) with this status and an ElevenLabs-style body. */
  fail?: { status: number; times?: number };
  /** Destroy the connection after this many audio chunks, as a network failure mid-stream would. */
  dieAfterChunks?: number;
  /**
   * Scales the character times of the with-timestamps stream (default 1: 60 ms a character, as the audio).
   * 0.5 says the text is spoken in the first half of its audio, so tests can tell timings from proportions.
   */
  timingScale?: number;
}

/** One request as the fake received it. */
export interface FakeElevenLabsRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  /** The `{voice_id}` path segment, decoded; undefined for other paths. */
  voiceId?: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body, or the raw text when it was not JSON. */
  body: unknown;
}

/** A running fake ElevenLabs server. */
export interface FakeElevenLabs {
  /** Base URL for the SDK's `baseUrl` (no trailing slash, no `/v1`). */
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: FakeElevenLabsRequest[];
  /** Audio responses the client hung up on before the last chunk. */
  readonly abortedRequests: number;
  /** Audio responses that ran to the end. */
  readonly completedRequests: number;
  /** Merges new options into the current ones (`fail: undefined` clears a failure). */
  setOptions(partial: Partial<FakeElevenLabsOptions>): void;
  close(): Promise<void>;
}

/** Milliseconds of audio the fake speaks for `text`: 60 ms a character, at least 200 ms. */
export const expectedAudioMs = (text: string): number => Math.max(MIN_AUDIO_MS, [...text].length * MS_PER_CHARACTER);

/** Bytes of 8 kHz mu-law the fake returns for `text`. */
export const expectedAudioBytes = (text: string): number => (expectedAudioMs(text) * SAMPLE_RATE) / 1000;

/** The fake's audio for `text`: a 440 Hz tone, identical for identical text. */
export function fakeAudio(text: string): Uint8Array {
  const out = new Uint8Array(expectedAudioBytes(text));
  for (let i = 0; i < out.length; i++) {
    out[i] = encodeMulawSample(Math.round(TONE_AMPLITUDE * Math.sin((2 * Math.PI * TONE_HZ * i) / SAMPLE_RATE)));
  }
  return out;
}

const FAIL_DETAILS: Record<number, { status: string; message: string }> = {
  400: { status: 'invalid_request', message: 'The request was invalid.' },
  401: { status: 'invalid_api_key', message: 'Invalid API key' },
  403: { status: 'missing_permissions', message: 'The API key does not have the permission text_to_speech.' },
  408: { status: 'request_timeout', message: 'The request timed out.' },
  429: { status: 'too_many_concurrent_requests', message: 'Too many concurrent requests for your subscription.' },
  500: { status: 'internal_server_error', message: 'An internal server error occurred.' },
  503: { status: 'system_busy', message: 'The system is experiencing heavy traffic, please try again.' },
};

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const sendDetail = (res: ServerResponse, status: number, detail: { status: string; message: string }): void =>
  sendJson(res, status, { detail });

async function readBody(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  const text = Buffer.concat(parts).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Character timings the way ElevenLabs gives them: seconds from the start of the request's audio. */
interface Alignment {
  characters: string[];
  character_start_times_seconds: number[];
  character_end_times_seconds: number[];
}

/**
 * One message of the with-timestamps stream: a piece of audio starting `startMs` into the answer, with the
 * characters whose sound starts inside it (the fake spreads characters evenly, 60 ms each).
 */
function timedPiece(piece: Uint8Array, chars: string[], startMs: number, scale: number): { audio_base64: string; alignment: Alignment | null; normalized_alignment: Alignment | null } {
  const endMs = startMs + (piece.length / SAMPLE_RATE) * 1000;
  const msPerChar = (expectedAudioMs(chars.join('')) / chars.length) * scale;
  const alignment: Alignment = { characters: [], character_start_times_seconds: [], character_end_times_seconds: [] };
  chars.forEach((c, i) => {
    const start = i * msPerChar;
    if (start < startMs || start >= endMs) return;
    alignment.characters.push(c);
    alignment.character_start_times_seconds.push(Math.round(start) / 1000);
    alignment.character_end_times_seconds.push(Math.round(start + msPerChar) / 1000);
  });
  const timed = alignment.characters.length > 0 ? alignment : null;
  return { audio_base64: Buffer.from(piece).toString('base64'), alignment: timed, normalized_alignment: timed };
}

/** Starts the fake on 127.0.0.1 with an ephemeral port. */
export async function startFakeElevenLabs(initial: FakeElevenLabsOptions = {}): Promise<FakeElevenLabs> {
  let options: FakeElevenLabsOptions = { ...initial };
  let failuresLeft = initial.fail?.times;
  const requests: FakeElevenLabsRequest[] = [];
  let aborted = 0;
  let completed = 0;

  /** Returns the injected failure for this request, if one is due, and counts it down. */
  const takeFailure = (): number | undefined => {
    const fail = options.fail;
    if (!fail) return undefined;
    if (failuresLeft === undefined) return fail.status;
    if (failuresLeft <= 0) return undefined;
    failuresLeft--;
    return fail.status;
  };

  async function streamAudio(req: IncomingMessage, res: ServerResponse, text: string, timestamps: boolean): Promise<void> {
    // The client hanging up shows as the response closing before we ended it.
    let gone = false;
    let serverKilled = false;
    res.on('close', () => {
      gone = true;
      if (!res.writableFinished && !serverKilled) aborted++;
    });
    const firstByteMs = typeof options.firstByteDelayMs === 'function' ? options.firstByteDelayMs() : options.firstByteDelayMs;
    if (firstByteMs) await sleep(firstByteMs);
    if (gone) return;
    res.writeHead(200, { 'content-type': timestamps ? 'application/json' : 'audio/basic', 'transfer-encoding': 'chunked' });
    const audio = fakeAudio(text);
    const chars = [...text];
    let chunks = 0;
    for (let at = 0; at < audio.length; at += CHUNK_BYTES) {
      if (chunks > 0 && options.chunkDelayMs) await sleep(options.chunkDelayMs);
      if (gone) return;
      if (options.dieAfterChunks !== undefined && chunks >= options.dieAfterChunks) {
        serverKilled = true;
        req.socket.destroy();
        return;
      }
      const piece = audio.subarray(at, at + CHUNK_BYTES);
      const flushed = res.write(timestamps ? `${JSON.stringify(timedPiece(piece, chars, (at / SAMPLE_RATE) * 1000, options.timingScale ?? 1))}\n` : piece);
      chunks++;
      if (!flushed) await new Promise<void>((resolve) => { res.once('drain', resolve); res.once('close', resolve); });
    }
    if (gone) return;
    res.end();
    completed++;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const match = STREAM_PATH.exec(url.pathname);
    const body = await readBody(req);
    const voiceId = match ? decodeURIComponent(match[1]!) : undefined;
    const timestamps = match?.[2] !== undefined;
    requests.push({ method: req.method ?? 'GET', path: url.pathname, voiceId, query: Object.fromEntries(url.searchParams), headers: req.headers, body });

    if (!match || voiceId === undefined) return sendJson(res, 404, { detail: 'Not Found' });
    if (req.method !== 'POST') return sendJson(res, 405, { detail: 'Method Not Allowed' });

    const failStatus = takeFailure();
    if (failStatus !== undefined) {
      return sendDetail(res, failStatus, FAIL_DETAILS[failStatus] ?? { status: 'error', message: `Injected failure ${failStatus}.` });
    }
    if (req.headers['xi-api-key'] !== (options.apiKey ?? 'test-elevenlabs-key')) return sendDetail(res, 401, FAIL_DETAILS[401]!);

    // Without output_format the real API answers mp3_44100_128, which this fake cannot make.
    const format = url.searchParams.get('output_format') ?? 'mp3_44100_128';
    if (!OUTPUT_FORMATS.has(format)) {
      return sendDetail(res, 400, { status: 'invalid_output_format', message: `Invalid output format: ${format}.` });
    }
    if (format !== 'ulaw_8000') {
      return sendDetail(res, 400, { status: 'unsupported_output_format', message: `This fake only synthesizes ulaw_8000, not ${format}.` });
    }
    const latency = url.searchParams.get('optimize_streaming_latency');
    if (latency !== null && !/^[0-4]$/.test(latency)) {
      return sendDetail(res, 400, { status: 'invalid_optimize_streaming_latency', message: 'optimize_streaming_latency must be an integer from 0 to 4.' });
    }
    if (options.voices && !options.voices.includes(voiceId)) {
      return sendDetail(res, 404, { status: 'voice_not_found', message: `A voice with the voice_id ${voiceId} was not found.` });
    }
    // Schema failures come from the API's validation layer, in FastAPI's 422 shape.
    if (!isRecord(body) || typeof body.text !== 'string') {
      return sendJson(res, 422, { detail: [{ loc: ['body', 'text'], msg: 'field required', type: 'value_error.missing' }] });
    }
    for (const field of ['previous_text', 'next_text'] as const) {
      const value = body[field];
      if (value !== undefined && value !== null && typeof value !== 'string') {
        return sendJson(res, 422, { detail: [{ loc: ['body', field], msg: 'str type expected', type: 'type_error.str' }] });
      }
    }
    const settings = body.voice_settings;
    if (settings !== undefined && settings !== null) {
      const speed = isRecord(settings) ? settings.speed : undefined;
      if (!isRecord(settings) || (speed !== undefined && (typeof speed !== 'number' || speed < SPEED_MIN || speed > SPEED_MAX))) {
        return sendDetail(res, 400, { status: 'invalid_voice_settings', message: `voice_settings.speed must be between ${SPEED_MIN} and ${SPEED_MAX}.` });
      }
    }
    if (body.text.trim() === '') return sendDetail(res, 400, { status: 'empty_text', message: 'Text must not be empty.' });
    await streamAudio(req, res, body.text, timestamps);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { detail: { status: 'internal_server_error', message: String(err) } });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get abortedRequests() {
      return aborted;
    },
    get completedRequests() {
      return completed;
    },
    setOptions(partial) {
      options = { ...options, ...partial };
      if ('fail' in partial) failuresLeft = partial.fail?.times;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
