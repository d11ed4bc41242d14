// The one level rule for "is there a voice in this 20 ms frame": a frame of 8 kHz mu-law whose RMS is
// above -35 dBFS. The simulator uses it to find the speech in a caller's file, the fake Deepgram to find
// utterances, the benchmark's caller and the conversation engine to find the caller's last voiced frame,
// so that the caller-wait figure means the same thing on both sides of a call.
import { decodeMulawSample } from './mulaw.js';
import { epochNow } from '../media-engine.js';

/** A frame louder than this (RMS, dBFS) holds voice. espeak speech sits at -15..-30 dBFS; the noise fixture at -39. */
export const SPEECH_DBFS = -35;

/** The threshold in PCM16 units (RMS). */
export const SPEECH_RMS = 32768 * 10 ** (SPEECH_DBFS / 20);

// Squared PCM16 value of every mu-law code: the per-frame check is 160 table reads and adds, no decode.
const SQUARES = Float64Array.from({ length: 256 }, (_, code) => decodeMulawSample(code) ** 2);
const THRESHOLD_SQUARED = SPEECH_RMS * SPEECH_RMS;

/** Whether `mulaw[start, end)` (normally one 20 ms frame) is louder than {@link SPEECH_DBFS}. */
export function isVoiced(mulaw: Uint8Array, start = 0, end = mulaw.length): boolean {
  const n = end - start;
  if (n <= 0) return false;
  let sum = 0;
  for (let i = start; i < end; i++) sum += SQUARES[mulaw[i]!]!;
  return sum / n > THRESHOLD_SQUARED;
}

/** The caller's last voiced frame so far: its place in the stream and when it arrived. */
export interface VoicedFrame {
  /** Stream time (ms since the first frame) at which the frame's audio ends. */
  streamEndMs: number;
  /** Epoch ms (sub-ms, see `epochNow`) at which the frame was received. */
  at: number;
}

/**
 * Follows an inbound stream frame by frame and remembers the last frame with voice in it: a level check
 * per 20 ms frame, cheap enough for the main thread, which gets every frame anyway.
 */
export class LastVoicedFrame {
  private streamMs = 0;
  // Two numbers rather than an object per voiced frame: nothing to allocate on the hot path.
  private lastEndMs = -1;
  private lastAt = 0;

  /** One inbound frame, received at `at` (default: now); returns whether it holds voice. */
  push(mulaw: Uint8Array, at: number = epochNow()): boolean {
    this.streamMs += mulaw.length / 8;
    if (!isVoiced(mulaw)) return false;
    this.lastEndMs = this.streamMs;
    this.lastAt = at;
    return true;
  }

  /** Stream time (ms) at the end of the frames pushed so far. */
  get streamEndMs(): number {
    return this.streamMs;
  }

  /** The last voiced frame so far; null before any. */
  get frame(): VoicedFrame | null {
    return this.lastEndMs < 0 ? null : { streamEndMs: this.lastEndMs, at: this.lastAt };
  }
}
