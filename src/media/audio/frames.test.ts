import { describe, expect, it } from 'vitest';
import { FRAME_SAMPLES_8K, FrameAssembler } from './frames.js';

/** Bytes 0, 1, 2, ... (mod 251, so no frame boundary lines up with the pattern). */
const bytes = (length: number, from = 0): Uint8Array => Uint8Array.from({ length }, (_, i) => (from + i) % 251);

/** Pushes `data` in chunks cycling through `sizes`; returns every frame, then the flushed one if any. */
function frameAll(data: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const assembler = FrameAssembler.mulaw();
  const frames: Uint8Array[] = [];
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const size = sizes[i % sizes.length]!;
    frames.push(...assembler.push(data.subarray(offset, offset + size)));
    offset += size;
  }
  const last = assembler.flush();
  if (last) frames.push(last);
  return frames;
}

describe('FrameAssembler', () => {
  it('frames 20 ms of 8 kHz audio: 160 samples', () => {
    expect(FrameAssembler.mulaw().frameLength).toBe(FRAME_SAMPLES_8K);
  });

  it('emits nothing until a whole frame has arrived', () => {
    const a = FrameAssembler.mulaw();
    expect([a.push(bytes(100)).length, a.push(bytes(59)).length, a.pending]).toEqual([0, 0, 159]);
  });

  it('emits a frame as soon as its last byte arrives', () => {
    const a = FrameAssembler.mulaw();
    a.push(bytes(159));
    expect(a.push(bytes(1, 159))).toEqual([bytes(160)]);
  });

  it('splits a 400-byte chunk into two frames and keeps the 80 bytes left over', () => {
    const a = FrameAssembler.mulaw();
    expect([a.push(bytes(400)), a.pending]).toEqual([[bytes(160), bytes(160, 160)], 80]);
  });

  it.each([[[1]], [[7]], [[159]], [[161]], [[333]], [[1, 160, 7, 320, 2]], [[1000]]])(
    'yields the same frames, byte for byte, whether fed at once or in chunks of %j',
    (sizes) => {
      const data = bytes(160 * 25 + 37);
      expect(frameAll(data, sizes)).toEqual(frameAll(data, [data.length]));
    },
  );

  it('keeps every byte in order across frames', () => {
    const data = bytes(160 * 10);
    const frames = frameAll(data, [7, 13]);
    expect(frames.flatMap((f) => Array.from(f))).toEqual(Array.from(data));
  });

  it('pads the last partial frame with mu-law silence (0xFF) on flush', () => {
    const a = FrameAssembler.mulaw();
    a.push(bytes(200));
    expect(a.flush()).toEqual(Uint8Array.from([...bytes(40, 160), ...new Uint8Array(120).fill(0xff)]));
  });

  it('flushes nothing when no partial frame is pending', () => {
    const a = FrameAssembler.mulaw();
    a.push(bytes(320));
    expect(a.flush()).toBeNull();
  });

  it('starts the next stream empty after flush', () => {
    const a = FrameAssembler.mulaw();
    a.push(bytes(10));
    a.flush();
    expect(a.push(bytes(160))).toEqual([bytes(160)]);
  });

  it('hands out frames that do not share memory with the chunk, so the caller may reuse its buffer', () => {
    const a = FrameAssembler.mulaw();
    const chunk = bytes(160);
    const [frame] = a.push(chunk);
    chunk.fill(0);
    expect(frame).toEqual(bytes(160));
  });

  it('hands out frames that stay intact while later chunks arrive', () => {
    const a = FrameAssembler.mulaw();
    const [first] = a.push(bytes(160));
    a.push(bytes(300, 7));
    expect(first).toEqual(bytes(160));
  });

  it('drops the pending partial frame on reset', () => {
    const a = FrameAssembler.mulaw();
    a.push(bytes(100));
    a.reset();
    expect([a.pending, a.flush()]).toEqual([0, null]);
  });

  it('frames PCM16 too, padding with 0', () => {
    const a = FrameAssembler.pcm16();
    a.push(new Int16Array(200).fill(-7));
    expect(Array.from(a.flush() ?? [])).toEqual([...new Array<number>(40).fill(-7), ...new Array<number>(120).fill(0)]);
  });

  it('rejects a frame length that is not a positive integer', () => {
    expect(() => FrameAssembler.mulaw(0)).toThrow(RangeError);
  });

  it('hands out the pending partial frame unpadded, once', () => {
    const a = FrameAssembler.mulaw(4);
    a.push(Uint8Array.of(1, 2, 3, 4, 5, 6));
    expect(a.takePartial()).toEqual(Uint8Array.of(5, 6));
    expect(a.takePartial()).toBeNull();
    expect(a.push(Uint8Array.of(7, 8, 9, 10))).toEqual([Uint8Array.of(7, 8, 9, 10)]);
  });
});
