import { describe, expect, it } from 'vitest';
import { magnitudeResponse, minAttenuationDb } from './fir.js';
import { Resampler, resamplerDesign, type ResamplerDesign } from './resampler.js';
import { concatPcm16, dbfs, goertzelPower, sine, snrDb, whiteNoise } from './signals.js';

/** The whole stream through a fresh resampler, in chunks cycling through `chunkSizes` (one chunk when omitted). */
function resample(inRate: number, outRate: number, input: Int16Array, chunkSizes: readonly number[] = [input.length]): Int16Array {
  const r = new Resampler(inRate, outRate);
  const parts: Int16Array[] = [];
  for (let offset = 0, i = 0; offset < input.length; i++) {
    const size = chunkSizes[i % chunkSizes.length]!;
    parts.push(r.process(input.subarray(offset, offset + size)));
    offset += size;
  }
  parts.push(r.flush());
  return concatPcm16(parts);
}

/** The prototype filter as the polyphase table actually runs it (each phase normalized), gain L. */
function tapsAsRun(d: ResamplerDesign): Float64Array {
  const taps = new Float64Array(d.up * d.tapsPerPhase);
  for (let p = 0; p < d.up; p++) {
    for (let k = 0; k < d.tapsPerPhase; k++) taps[p + k * d.up] = d.phases[p * d.tapsPerPhase + d.tapsPerPhase - 1 - k]!;
  }
  return taps;
}

/** Level of `y` relative to `x` in dB, both measured away from the start-up and flush transients. */
const gainDb = (x: Int16Array, y: Int16Array, edge = 0.1): number =>
  dbfs(y, Math.floor(y.length * edge), Math.ceil(y.length * (1 - edge))) - dbfs(x, Math.floor(x.length * edge), Math.ceil(x.length * (1 - edge)));

const tone = (frequency: number, sampleRate: number, seconds = 1, level = -10): Int16Array =>
  sine({ frequency, sampleRate, length: Math.round(sampleRate * seconds), dbfs: level, phase: 0.3 });

describe('Resampler', () => {
  it.each([
    [8000, 16000, 16000],
    [16000, 8000, 8000],
    [24000, 8000, 8000],
    [8000, 24000, 24000],
    [22050, 8000, 8000],
    [8000, 22050, 22050],
  ])('turns one second at %i Hz into %i Hz: %i samples once flushed', (inRate, outRate, expected) => {
    expect(resample(inRate, outRate, tone(1000, inRate)).length).toBe(expected);
  });

  it('rounds a fractional output length up: 1001 samples at 24 kHz make 334 at 8 kHz', () => {
    expect(resample(24000, 8000, whiteNoise(1001)).length).toBe(334);
  });

  it('holds back no more than latencySamples outputs before flush', () => {
    const r = new Resampler(22050, 8000);
    let produced = 0;
    for (let fed = 0; fed < 22050; ) {
      produced += r.process(whiteNoise(441, fed)).length;
      fed += 441;
      expect(Math.ceil((fed * 8000) / 22050) - produced).toBeLessThanOrEqual(r.latencySamples);
    }
  });

  it('keeps the level of a 1 kHz sine within 0.5 dB through 8 kHz -> 16 kHz -> 8 kHz', () => {
    const x = tone(1000, 8000);
    expect(Math.abs(gainDb(x, resample(16000, 8000, resample(8000, 16000, x))))).toBeLessThan(0.5);
  });

  it('keeps a 1 kHz sine at an SNR above 50 dB through 8 kHz -> 16 kHz -> 8 kHz, aligned in time', () => {
    const x = tone(1000, 8000);
    expect(snrDb(x, resample(16000, 8000, resample(8000, 16000, x)), 800, 7200)).toBeGreaterThan(50);
  });

  it('keeps the level of a 1 kHz sine within 0.5 dB from 24 kHz to 8 kHz', () => {
    expect(Math.abs(gainDb(tone(1000, 8000), resample(24000, 8000, tone(1000, 24000))))).toBeLessThan(0.5);
  });

  it('keeps a 1 kHz sine at an SNR above 50 dB from 24 kHz to 8 kHz, aligned in time', () => {
    expect(snrDb(tone(1000, 8000), resample(24000, 8000, tone(1000, 24000)), 800, 7200)).toBeGreaterThan(50);
  });

  it('keeps a 1 kHz sine at an SNR above 50 dB from 22.05 kHz to 8 kHz (a 160/441 ratio)', () => {
    const y = resample(22050, 8000, tone(1000, 22050));
    expect(snrDb(tone(1000, 8000), y, 800, 7200)).toBeGreaterThan(50);
  });

  it('keeps a 1 kHz sine at an SNR above 50 dB from 8 kHz to 22.05 kHz', () => {
    const y = resample(8000, 22050, tone(1000, 8000));
    expect(snrDb(tone(1000, 22050), y, 2205, 19845)).toBeGreaterThan(50);
  });

  it('passes a 3.5 kHz tone from 24 kHz to 8 kHz within 0.1 dB', () => {
    expect(Math.abs(gainDb(tone(3500, 24000), resample(24000, 8000, tone(3500, 24000))))).toBeLessThan(0.1);
  });

  it('attenuates a 6 kHz tone at 24 kHz, above the 4 kHz Nyquist of 8 kHz, by at least 50 dB instead of aliasing it', () => {
    const x = tone(6000, 24000, 1, -1);
    expect(gainDb(x, resample(24000, 8000, x))).toBeLessThan(-50);
  });

  it('attenuates every tone from 4 kHz to 12 kHz by at least 60 dB when going from 24 kHz to 8 kHz', () => {
    const worst: number[] = [];
    for (let f = 4000; f < 12000; f += 173) {
      const x = tone(f, 24000, 0.25, -1);
      worst.push(gainDb(x, resample(24000, 8000, x)));
    }
    expect(Math.max(...worst)).toBeLessThan(-60);
  });

  it('suppresses the 7 kHz image of a 1 kHz tone upsampled from 8 kHz to 16 kHz by at least 60 dB', () => {
    const y = resample(8000, 16000, tone(1000, 8000, 1, -1));
    const image = goertzelPower(y, 7000, 16000, { start: 1600, end: 14400 });
    const wanted = goertzelPower(y, 1000, 16000, { start: 1600, end: 14400 });
    expect(10 * Math.log10(image / wanted)).toBeLessThan(-60);
  });

  it.each([
    [8000, 16000],
    [24000, 8000],
    [22050, 8000],
    [8000, 22050],
  ])('passes DC from %i Hz to %i Hz with a gain of exactly 1', (inRate, outRate) => {
    const y = resample(inRate, outRate, new Int16Array(inRate / 5).fill(12345));
    const settled = y.subarray(200, y.length - 200);
    expect(settled.every((v) => v === 12345)).toBe(true);
  });

  it.each([
    [8000, 16000, [1]],
    [8000, 16000, [7]],
    [8000, 16000, [160, 320, 1, 159]],
    [24000, 8000, [1]],
    [24000, 8000, [7, 480, 13]],
    [22050, 8000, [1]],
    [22050, 8000, [7]],
    [22050, 8000, [441, 160, 1000, 3]],
    [8000, 22050, [1, 2, 3, 160]],
  ])('gives %i Hz -> %i Hz output identical to the whole-signal output when fed in chunks of %j', (inRate, outRate, chunks) => {
    const x = whiteNoise(inRate / 2, 42);
    expect(Array.from(resample(inRate, outRate, x, chunks))).toEqual(Array.from(resample(inRate, outRate, x)));
  });

  it('clips the overshoot of a full-scale square wave instead of wrapping it around to the other sign', () => {
    const square = Int16Array.from({ length: 8000 }, (_, i) => (i % 16 < 8 ? 32767 : -32768));
    const y = resample(8000, 16000, square);
    const wrapped = y.filter((v, i) => i % 32 >= 1 && i % 32 < 15 && v < 0);
    expect(wrapped.length).toBe(0);
  });

  it('writes the same samples through processInto as process returns', () => {
    const x = whiteNoise(4000, 5);
    const a = new Resampler(24000, 8000);
    const b = new Resampler(24000, 8000);
    const out = new Int16Array(a.outputLength(x.length));
    const n = a.processInto(x, out);
    expect(Array.from(out.subarray(0, n))).toEqual(Array.from(b.process(x)));
  });

  it('refuses a processInto buffer smaller than outputLength', () => {
    const r = new Resampler(8000, 16000);
    expect(() => r.processInto(new Int16Array(160), new Int16Array(r.outputLength(160) - 1))).toThrow(RangeError);
  });

  it('starts a fresh stream after reset', () => {
    const x = whiteNoise(2000, 9);
    const r = new Resampler(8000, 24000);
    r.process(whiteNoise(999, 10));
    r.reset();
    expect(Array.from(r.process(x))).toEqual(Array.from(new Resampler(8000, 24000).process(x)));
  });

  it('starts a fresh stream after flush', () => {
    const x = whiteNoise(2000, 11);
    const r = new Resampler(22050, 8000);
    r.process(whiteNoise(777, 12));
    r.flush();
    expect(Array.from(r.process(x))).toEqual(Array.from(new Resampler(22050, 8000).process(x)));
  });

  it('passes audio through untouched, with no latency, when the rates are equal', () => {
    const x = whiteNoise(500, 13);
    const r = new Resampler(8000, 8000);
    expect([Array.from(r.process(x)), r.flush().length, r.latencySamples]).toEqual([Array.from(x), 0, 0]);
  });

  it('rejects rates that are not positive integers', () => {
    expect(() => new Resampler(8000.5, 16000)).toThrow(RangeError);
  });
});

describe('resamplerDesign', () => {
  it.each([
    [8000, 16000],
    [16000, 8000],
    [8000, 24000],
    [24000, 8000],
  ])('gives %i Hz -> %i Hz a stopband at least 60 dB down from the lower Nyquist frequency up', (inRate, outRate) => {
    const d = resamplerDesign(inRate, outRate);
    expect(minAttenuationDb(tapsAsRun(d), d.stopbandHz / d.prototypeRate, 0.5, d.up)).toBeGreaterThan(60);
  });

  it('keeps the passband, up to 3.5 kHz for 8 kHz, within 0.01 dB', () => {
    const d = resamplerDesign(24000, 8000);
    const taps = tapsAsRun(d);
    let worst = 0;
    for (let f = 0; f <= d.passbandHz; f += 50) worst = Math.max(worst, Math.abs(20 * Math.log10(magnitudeResponse(taps, f / d.prototypeRate) / d.up)));
    expect(worst).toBeLessThan(0.01);
  });

  it('shares one table between resamplers of the same conversion', () => {
    expect(new Resampler(22050, 8000).design).toBe(new Resampler(22050, 8000).design);
  });

});
