import { describe, expect, it } from 'vitest';
import { benchAudio } from './audio-bench.js';

describe('benchAudio', () => {
  it('reports a positive, finite time for every primitive', () => {
    const figures = Object.values(benchAudio({ measureMs: 5, warmupMs: 1 }));
    expect(figures.length).toBe(4);
    expect(figures.every((ns) => Number.isFinite(ns) && ns > 0)).toBe(true);
  });
});
