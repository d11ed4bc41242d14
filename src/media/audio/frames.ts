// 20 ms framing. Twilio Media Streams carry 20 ms of 8 kHz mu-law per message (160 bytes), and pacing,
// marks and barge-in accounting all count in those frames, so whatever size chunks TTS or a socket
// delivers is regrouped into exact frames here, with the remainder kept for the next chunk.

/** Samples in 20 ms at 8 kHz: one Twilio media frame. */
export const FRAME_SAMPLES_8K = 160;

/** Sample containers a {@link FrameAssembler} can frame. */
export type FrameSamples = Uint8Array | Int16Array;

/** How a {@link FrameAssembler} builds frames. */
export interface FrameAssemblerOptions<T extends FrameSamples> {
  /** Allocates a frame of `length` samples. */
  allocate(length: number): T;
  /** Samples per frame. Default {@link FRAME_SAMPLES_8K}. */
  frameLength?: number;
  /** Sample value that pads the last partial frame: 0xFF for mu-law, 0 for PCM. */
  silence: number;
}

/** Regroups arbitrary chunks of samples into fixed-length frames, keeping the remainder between chunks. */
export class FrameAssembler<T extends FrameSamples> {
  /** Samples per frame. */
  readonly frameLength: number;
  private readonly allocate: (length: number) => T;
  private readonly silence: number;
  /** The partial frame being filled; handed out (and replaced) once full, so frames never alias. */
  private current: T;
  private filled = 0;

  /** A mu-law assembler: 160-byte frames, padded with mu-law silence (0xFF). */
  static mulaw(frameLength = FRAME_SAMPLES_8K): FrameAssembler<Uint8Array> {
    return new FrameAssembler<Uint8Array>({ allocate: (n) => new Uint8Array(n), frameLength, silence: 0xff });
  }

  /** A PCM16 assembler: 160-sample frames by default, padded with 0. */
  static pcm16(frameLength = FRAME_SAMPLES_8K): FrameAssembler<Int16Array> {
    return new FrameAssembler<Int16Array>({ allocate: (n) => new Int16Array(n), frameLength, silence: 0 });
  }

  constructor(opts: FrameAssemblerOptions<T>) {
    this.frameLength = opts.frameLength ?? FRAME_SAMPLES_8K;
    if (!Number.isInteger(this.frameLength) || this.frameLength <= 0) {
      throw new RangeError(`FrameAssembler: frameLength must be a positive integer, got ${this.frameLength}`);
    }
    this.allocate = opts.allocate;
    this.silence = opts.silence;
    this.current = this.allocate(this.frameLength);
  }

  /** Samples waiting for a frame to complete. */
  get pending(): number {
    return this.filled;
  }

  /** Adds a chunk; returns the frames it completes, in order, each a new array the caller owns. */
  push(chunk: T): T[] {
    const frames: T[] = [];
    const size = this.frameLength;
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(size - this.filled, chunk.length - offset);
      // Copy, never subarray: the caller may reuse `chunk` (a socket or decoder buffer) after we return.
      this.current.set(chunk.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === size) {
        frames.push(this.current);
        this.current = this.allocate(size);
        this.filled = 0;
      }
    }
    return frames;
  }

  /** Ends the stream: returns the partial frame padded with silence, or null when nothing is pending. */
  flush(): T | null {
    if (this.filled === 0) return null;
    const frame = this.current;
    frame.fill(this.silence, this.filled);
    this.current = this.allocate(this.frameLength);
    this.filled = 0;
    return frame;
  }

  /** Hands out the pending partial frame as it is, unpadded (a sender flushing early); null when nothing is pending. */
  takePartial(): T | null {
    if (this.filled === 0) return null;
    const partial = this.current.slice(0, this.filled) as T;
    this.filled = 0;
    return partial;
  }

  /** Drops the pending partial frame (after a barge-in `clear`, its audio must not be sent). */
  reset(): void {
    // The stale samples stay in `current`; every position is overwritten or silence-filled before it is handed out.
    this.filled = 0;
  }
}
