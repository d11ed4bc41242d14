import { describe, expect, it } from 'vitest';
import { besselI0, kaiserBeta, kaiserLength, kaiserLowpass, magnitudeResponse, minAttenuationDb } from './fir.js';

describe('besselI0', () => {
  it('matches tabulated values of I0', () => {
    expect(besselI0(0)).toBe(1);
    expect(besselI0(1)).toBeCloseTo(1.2660658777520082, 14);
    expect(besselI0(5)).toBeCloseTo(27.239871823604442, 11);
  });
});

describe('kaiserBeta and kaiserLength', () => {
  it('give Kaiser\'s beta for 60 dB', () => {
    expect(kaiserBeta(60)).toBeCloseTo(5.65326, 5);
  });

  it('use no window shaping (a rectangular window) below 21 dB', () => {
    expect(kaiserBeta(20)).toBe(0);
  });

  it('always give an odd length, so the filter delay is a whole number of samples', () => {
    for (const width of [0.01, 0.02, 0.033, 0.05]) expect(kaiserLength(60, width) % 2).toBe(1);
  });
});

describe('kaiserLowpass', () => {
  const spec = { passbandEdge: 0.2, stopbandEdge: 0.25, attenuationDb: 60 };
  const { taps } = kaiserLowpass(spec);

  it('attenuates the whole stopband by the attenuation asked for, within the 1 dB of Kaiser\'s formulas', () => {
    expect(minAttenuationDb(taps, spec.stopbandEdge, 0.5, 1)).toBeGreaterThan(59);
  });

  it('keeps the passband flat to within 0.01 dB', () => {
    for (let f = 0; f <= spec.passbandEdge; f += 0.005) {
      expect(Math.abs(20 * Math.log10(magnitudeResponse(taps, f)))).toBeLessThan(0.01);
    }
  });

  it('is symmetric, so its phase is linear and all frequencies are delayed alike', () => {
    expect(Array.from(taps)).toEqual(Array.from(taps).reverse());
  });

  it('scales the passband by the requested gain', () => {
    const gained = kaiserLowpass({ ...spec, gain: 3 }).taps;
    expect(magnitudeResponse(gained, 0)).toBeCloseTo(3, 3);
  });

  it('rejects a stopband edge below the passband edge', () => {
    expect(() => kaiserLowpass({ passbandEdge: 0.3, stopbandEdge: 0.2, attenuationDb: 60 })).toThrow(RangeError);
  });
});
