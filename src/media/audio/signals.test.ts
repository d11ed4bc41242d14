import { describe, expect, it } from 'vitest';
import { concatPcm16, dbfs, goertzelPower, rms, sine, snrDb, toneDbfs, whiteNoise } from './signals.js';

describe('sine', () => {
  it('generates a tone at the requested level in dBFS', () => {
    expect(dbfs(sine({ frequency: 1000, sampleRate: 8000, length: 8000, dbfs: -10 }))).toBeCloseTo(-10, 2);
  });

  it('generates the requested frequency', () => {
    const x = sine({ frequency: 697, sampleRate: 8000, length: 8000 });
    expect(toneDbfs(x, 697, 8000)).toBeCloseTo(-10, 1);
  });

  it('saturates at 32767 rather than wrapping when asked for 0 dBFS', () => {
    const x = sine({ frequency: 2000, sampleRate: 8000, length: 8, dbfs: 0 });
    expect(Math.max(...x)).toBe(32767);
  });
});

describe('rms and dbfs', () => {
  it('measures a constant as its magnitude', () => {
    expect(rms(new Int16Array(100).fill(-1000))).toBe(1000);
  });

  it('reads a full-scale square wave as +3 dBFS', () => {
    const square = Int16Array.from({ length: 800 }, (_, i) => (i % 2 === 0 ? 32767 : -32767));
    expect(dbfs(square)).toBeCloseTo(3.01, 2);
  });

  it('reads digital silence as -Infinity dBFS', () => {
    expect(dbfs(new Int16Array(160))).toBe(-Infinity);
  });

  it('measures only the requested range', () => {
    const x = new Int16Array(200);
    x.fill(500, 100);
    expect(rms(x, 100, 200)).toBe(500);
  });
});

describe('snrDb', () => {
  it('is the ratio of signal power to the power of the difference', () => {
    const reference = new Float64Array(1000).fill(100);
    const actual = reference.map((v, i) => v + (i % 2 === 0 ? 1 : -1));
    expect(snrDb(reference, actual)).toBeCloseTo(40, 6);
  });
});

describe('goertzelPower', () => {
  it('reads a sine of amplitude A as A^2 / 2 at its own frequency', () => {
    const x = Float64Array.from({ length: 4000 }, (_, i) => 1000 * Math.sin((2 * Math.PI * 440 * i) / 8000 + 0.3));
    expect(goertzelPower(x, 440, 8000)).toBeCloseTo(500_000, -2);
  });

  it('sees a tone 1 kHz away more than 80 dB down, so weak aliases can be measured next to strong tones', () => {
    const x = Float64Array.from({ length: 8000 }, (_, i) => Math.sin((2 * Math.PI * 1013.7 * i) / 8000));
    expect(10 * Math.log10(goertzelPower(x, 2013.7, 8000) / 0.5)).toBeLessThan(-80);
  });

  it('with a rectangular window, is exact for a whole number of cycles', () => {
    const x = Float64Array.from({ length: 800 }, (_, i) => 2 * Math.cos((2 * Math.PI * 100 * i) / 8000));
    expect(goertzelPower(x, 100, 8000, { window: 'rect' })).toBeCloseTo(2, 9);
  });
});

describe('whiteNoise', () => {
  it('repeats itself for the same seed', () => {
    expect(Array.from(whiteNoise(100, 7))).toEqual(Array.from(whiteNoise(100, 7)));
  });

  it('differs for another seed', () => {
    expect(Array.from(whiteNoise(100, 7))).not.toEqual(Array.from(whiteNoise(100, 8)));
  });

  it('stays within its peak', () => {
    expect(Math.max(...whiteNoise(48_000, 3, 10_000).map(Math.abs))).toBeLessThanOrEqual(10_000);
  });

  it('has the RMS of uniform noise, peak / sqrt(3)', () => {
    expect(rms(whiteNoise(48_000, 3, 10_000))).toBeCloseTo(10_000 / Math.sqrt(3), -2);
  });
});

describe('concatPcm16', () => {
  it('joins chunks in order', () => {
    expect(Array.from(concatPcm16([Int16Array.of(1, 2), new Int16Array(0), Int16Array.of(3)]))).toEqual([1, 2, 3]);
  });
});
