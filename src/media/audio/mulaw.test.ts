import { describe, expect, it } from 'vitest';
import {
  MULAW_MAX,
  MULAW_SILENCE,
  decodeMulawSample,
  encodeMulawSample,
  encodeMulawSampleByFormula,
  mulawToPcm16,
  pcm16ToMulaw,
} from './mulaw.js';
import { sine, snrDb } from './signals.js';

const ALL_CODES = Uint8Array.from({ length: 256 }, (_, i) => i);

/** Quantization step of the segment a code belongs to, in PCM16 units. */
const stepOf = (code: number): number => 8 << ((~code >> 4) & 0x07);

describe('decodeMulawSample', () => {
  it('decodes the reference codes 0xFF to 0, 0x00 to -32124 and 0x80 to 32124', () => {
    expect([decodeMulawSample(0xff), decodeMulawSample(0x00), decodeMulawSample(0x80)]).toEqual([0, -32124, 32124]);
  });

  it('decodes both zero codes, 0xFF (+0) and 0x7F (-0), to 0', () => {
    expect([decodeMulawSample(0xff), decodeMulawSample(0x7f)]).toEqual([0, 0]);
  });

  it('decodes a code with the sign bit flipped to the opposite value', () => {
    for (let code = 0; code < 128; code++) expect(decodeMulawSample(code) + decodeMulawSample(code | 0x80)).toBe(0);
  });

  it('spaces the 16 levels of each segment evenly, the step doubling from one segment to the next', () => {
    for (let code = 0x80; code < 0xff; code++) {
      if ((code & 0x0f) === 0x0f) continue; // the next code starts another segment
      expect(decodeMulawSample(code) - decodeMulawSample(code + 1)).toBe(stepOf(code));
    }
  });

  it('never exceeds MULAW_MAX in magnitude', () => {
    const magnitudes = Array.from(ALL_CODES, (c) => Math.abs(decodeMulawSample(c)));
    expect(Math.max(...magnitudes)).toBe(MULAW_MAX);
  });
});

describe('encodeMulawSample', () => {
  it('round-trips every code through decode and encode, except -0 (0x7F), which comes back as +0 (0xFF)', () => {
    for (let code = 0; code < 256; code++) {
      expect(encodeMulawSample(decodeMulawSample(code))).toBe(code === 0x7f ? 0xff : code);
    }
  });

  it('encodes 0 as mu-law silence, 0xFF', () => {
    expect(encodeMulawSample(0)).toBe(MULAW_SILENCE);
  });

  it('encodes -1 as -0 (0x7F), as the ITU reference encoder does', () => {
    expect(encodeMulawSample(-1)).toBe(0x7f);
  });

  it('clips full scale to the top codes: 32767 to 0x80 and -32768 to 0x00', () => {
    expect([encodeMulawSample(32767), encodeMulawSample(-32768)]).toEqual([0x80, 0x00]);
  });

  it('clips samples beyond the PCM16 range instead of wrapping around', () => {
    expect([encodeMulawSample(40_000), encodeMulawSample(-1e9)]).toEqual([0x80, 0x00]);
  });

  it('keeps every sample within half a quantization step of what it decodes to', () => {
    const outside: number[] = [];
    for (let x = -MULAW_MAX; x <= MULAW_MAX; x++) {
      const code = encodeMulawSample(x);
      if (Math.abs(decodeMulawSample(code) - x) > stepOf(code) / 2) outside.push(x);
    }
    expect(outside).toEqual([]);
  });

  it('agrees with the G.711 segment algorithm for every PCM16 value', () => {
    let mismatches = 0;
    for (let x = -32768; x <= 32767; x++) if (encodeMulawSample(x) !== encodeMulawSampleByFormula(x)) mismatches++;
    expect(mismatches).toBe(0);
  });
});

describe('mulawToPcm16 and pcm16ToMulaw', () => {
  it('decode a buffer sample by sample like decodeMulawSample', () => {
    expect(Array.from(mulawToPcm16(ALL_CODES))).toEqual(Array.from(ALL_CODES, decodeMulawSample));
  });

  it('encode a buffer sample by sample like encodeMulawSample', () => {
    const pcm = Int16Array.from({ length: 4096 }, (_, i) => (i * 16) - 32768);
    expect(Array.from(pcm16ToMulaw(pcm))).toEqual(Array.from(pcm, encodeMulawSample));
  });

  it('write into a longer caller buffer and return a view of exactly the samples written', () => {
    const dst = new Int16Array(400);
    const out = mulawToPcm16(new Uint8Array(160).fill(0x80), dst);
    expect(out.length).toBe(160);
    expect(out.buffer).toBe(dst.buffer);
    expect(dst[159]).toBe(32124);
  });

  it('throw instead of writing past the end of a caller buffer that is too short', () => {
    expect(() => pcm16ToMulaw(new Int16Array(160), new Uint8Array(159))).toThrow(RangeError);
  });

  it('keep a -10 dBFS sine near 1 kHz at an SNR above 35 dB through encode and decode', () => {
    // 1020 Hz, the ITU test tone: 1000 Hz divides 8 kHz, so it would visit only 8 sample values and the SNR
    // would depend on its phase (34-41 dB) rather than on the codec.
    const x = sine({ frequency: 1020, sampleRate: 8000, length: 8000, dbfs: -10 });
    expect(snrDb(x, mulawToPcm16(pcm16ToMulaw(x)))).toBeGreaterThan(35);
  });
});
