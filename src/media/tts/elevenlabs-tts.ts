// ElevenLabs streaming text-to-speech through the official SDK. We ask for `ulaw_8000`, which is what the
// phone carries, so the bytes go out exactly as they arrive: no decoding, resampling or re-chunking.
import { ElevenLabsClient, ElevenLabsError } from '@elevenlabs/elevenlabs-js';
import { ProviderError } from '../../shared/errors.js';
import type { TtsCharTimings, TtsOptions, TtsProvider } from '../providers.js';

const PROVIDER = 'elevenlabs';
const DEFAULT_MODEL = 'eleven_flash_v2_5';
const DEFAULT_TIMEOUT_MS = 10_000;
/**
 * ElevenLabs accepts `voice_settings.speed` only from 0.7 to 1.2 and rejects the request otherwise, which
 * would fail the whole turn; a pace a little off from what the agent asked for is the better outcome.
 */
const SPEED_MIN = 0.7;
const SPEED_MAX = 1.2;

/** Options for {@link ElevenLabsTts}. */
export interface ElevenLabsTtsOptions {
  apiKey: string;
  /** API root without `/v1`, e.g. `https://api.elevenlabs.io` (the default) or a local fake. */
  baseUrl?: string;
  /** Default `eleven_flash_v2_5`, ElevenLabs' lowest-latency model. */
  modelId?: string;
  /** ElevenLabs' `optimize_streaming_latency` (0-4); omitted: the API's default. */
  optimizeStreamingLatency?: number;
  /** Longest wait for the response and then between audio chunks before giving up (default 10 s). */
  timeoutMs?: number;
}

/** Clamps the engine's pace to what ElevenLabs accepts; non-finite values mean the voice's natural pace. */
export const elevenLabsSpeed = (speed: number): number =>
  Number.isFinite(speed) ? Math.min(SPEED_MAX, Math.max(SPEED_MIN, speed)) : 1;

/** ElevenLabs streaming TTS: one HTTP request per piece of text, 8 kHz mu-law streamed back. */
// The end of the reply so far is what shapes the next sentence's start; more only makes the request bigger.
const PREVIOUS_TEXT_CHARS = 300;

export class ElevenLabsTts implements TtsProvider {
  readonly name = PROVIDER;
  private readonly client: ElevenLabsClient;
  private readonly modelId: string;
  private readonly optimizeStreamingLatency: number | undefined;
  private readonly timeoutMs: number;

  constructor(options: ElevenLabsTtsOptions) {
    // Retries belong to the engine's fallback logic: an SDK retry would silently add seconds to a live turn.
    this.client = new ElevenLabsClient({ apiKey: options.apiKey, maxRetries: 0, ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}) });
    this.modelId = options.modelId ?? DEFAULT_MODEL;
    this.optimizeStreamingLatency = options.optimizeStreamingLatency;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /**
   * Streams the audio for `text` as it arrives; aborting `signal` hangs up and ends the iteration quietly.
   * With `onTimings` it asks for the with-timestamps stream, and hands over each piece's character timings
   * before the piece itself.
   */
  async *synthesize(text: string, { voice, speed, signal, onTimings, previousText }: TtsOptions): AsyncIterable<Uint8Array> {
    // Nothing to say is not an error; ElevenLabs would answer it with a 400.
    if (signal.aborted || text.trim() === '') return;

    // One controller cancels the HTTP request for every reason we stop: the caller's abort, a stall, or the
    // consumer leaving the loop early.
    const request = new AbortController();
    const onAbort = (): void => request.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    // The stall clock runs only while we wait for ElevenLabs, not while the consumer holds a chunk.
    let stalled = false;
    let stallTimer: NodeJS.Timeout | undefined;
    const waitStarts = (): void => {
      stallTimer = setTimeout(() => {
        stalled = true;
        request.abort(new Error('stalled'));
      }, this.timeoutMs);
    };
    const waitEnds = (): void => clearTimeout(stallTimer);
    let pieces: Pieces | undefined;
    let finished = false;

    try {
      const clamped = elevenLabsSpeed(speed);
      const body = {
        text,
        modelId: this.modelId,
        outputFormat: 'ulaw_8000' as const,
        optimizeStreamingLatency: this.optimizeStreamingLatency,
        // Only sent when it changes something: voice_settings overrides the voice's stored settings.
        ...(clamped === 1 ? {} : { voiceSettings: { speed: clamped } }),
        ...(previousText ? { previousText: previousText.slice(-PREVIOUS_TEXT_CHARS) } : {}),
      };
      const options = { abortSignal: request.signal, maxRetries: 0, timeoutInSeconds: this.timeoutMs / 1000 };
      waitStarts();
      pieces = onTimings
        ? timedPieces(await this.client.textToSpeech.streamWithTimestamps(voice, body, options))
        : audioPieces(await this.client.textToSpeech.stream(voice, body, options));
      const timings = new TimingsOffset();
      for (;;) {
        const next = await pieces.next();
        waitEnds();
        if (next.done) {
          finished = true;
          return;
        }
        const { audio, alignment } = next.value;
        if (alignment && onTimings) onTimings(timings.place(alignment));
        timings.advance(audio.byteLength);
        if (audio.byteLength > 0) yield audio;
        // Chunks already buffered must not play after a barge-in.
        if (signal.aborted) return;
        waitStarts();
      }
    } catch (err) {
      if (signal.aborted) return;
      if (stalled) throw new ProviderError(PROVIDER, `no audio for ${this.timeoutMs} ms`, true, undefined, { cause: err });
      throw toProviderError(err);
    } finally {
      waitEnds();
      signal.removeEventListener('abort', onAbort);
      // Reached when the consumer stops iterating early too: hang up so ElevenLabs stops generating (and billing).
      if (!finished) {
        request.abort();
        pieces?.cancel();
      }
    }
  }
}

/** One piece of the answer: audio, and the timings of the characters that start in it (seconds from the start). */
interface Piece {
  audio: Uint8Array;
  alignment?: { characters: string[]; characterStartTimesSeconds: number[]; characterEndTimesSeconds: number[] };
}

/** The pieces of one response, whatever its shape, and a way to hang up on it. */
interface Pieces {
  next(): Promise<IteratorResult<Piece>>;
  cancel(): void;
}

// The plain stream: raw mu-law bytes.
function audioPieces(body: ReadableStream<Uint8Array>): Pieces {
  const reader = body.getReader();
  return {
    next: async () => {
      const { done, value } = await reader.read();
      return done ? { done: true, value: undefined } : { done: false, value: { audio: value } };
    },
    cancel: () => void reader.cancel().catch(() => {}),
  };
}

// The with-timestamps stream: one JSON object per line, base64 audio with its character timings.
function timedPieces(stream: AsyncIterable<{ audioBase64: string; alignment?: Piece['alignment'] }>): Pieces {
  const iterator = stream[Symbol.asyncIterator]();
  return {
    next: async () => {
      const r = await iterator.next();
      if (r.done) return { done: true, value: undefined };
      const bytes = Buffer.from(r.value.audioBase64 ?? '', 'base64');
      return { done: false, value: { audio: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), alignment: r.value.alignment } };
    },
    cancel: () => void iterator.return?.().catch(() => {}),
  };
}

/**
 * Puts each piece's timings on one clock, ms from the start of this text's audio. ElevenLabs counts from
 * the start of the request; should a piece count from its own start instead (times going back), the audio
 * before it is added, so both conventions land on the same clock.
 */
class TimingsOffset {
  private audioMs = 0;
  private lastEndMs = 0;

  place(a: NonNullable<Piece['alignment']>): TtsCharTimings {
    let startsMs = a.characterStartTimesSeconds.map((s) => s * 1000);
    let endsMs = a.characterEndTimesSeconds.map((s) => s * 1000);
    if (startsMs.length > 0 && startsMs[0]! + 1 < this.lastEndMs) {
      startsMs = startsMs.map((ms) => ms + this.audioMs);
      endsMs = endsMs.map((ms) => ms + this.audioMs);
    }
    this.lastEndMs = Math.max(this.lastEndMs, ...endsMs);
    return { chars: a.characters, startsMs, endsMs };
  }

  advance(bytes: number): void {
    this.audioMs += bytes / 8;
  }
}

/** `detail.message` (and `detail.status`) from an ElevenLabs error body, when it has that shape. */
function describeBody(body: unknown): string | undefined {
  if (typeof body === 'string') return body.trim() || undefined;
  if (typeof body !== 'object' || body === null || !('detail' in body)) return undefined;
  const { detail } = body;
  if (typeof detail === 'string') return detail;
  if (typeof detail === 'object' && detail !== null && 'message' in detail && typeof detail.message === 'string') {
    return 'status' in detail && typeof detail.status === 'string' ? `${detail.message} (${detail.status})` : detail.message;
  }
  return JSON.stringify(detail);
}

/** Maps what the SDK throws to ProviderError: HTTP statuses by the usual rule, everything else (network, timeout) retryable. */
function toProviderError(err: unknown): ProviderError {
  if (err instanceof ElevenLabsError && err.statusCode !== undefined) {
    const status = err.statusCode;
    const detail = describeBody(err.body);
    return new ProviderError(PROVIDER, `HTTP ${status}${detail ? `: ${detail}` : ''}`, ProviderError.isRetryableStatus(status), status, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ProviderError(PROVIDER, `request failed: ${message}`, true, undefined, { cause: err });
}
