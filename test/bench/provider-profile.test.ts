import { describe, expect, it } from 'vitest';
import { DEFAULT_PROFILE, LatencyDraw, parseProfile, PROFILES } from '../../bench/provider-profile.js';

describe('the benchmark\'s provider profiles', () => {
  it('keeps zero delays by default', () => {
    expect(DEFAULT_PROFILE).toBe('zero');
    const zero = parseProfile(undefined);
    expect([zero.sttFinalAfterSpeechMs, zero.sttFinalizeMs, zero.llmFirstTokenMs, zero.llmTokenMs, zero.ttsFirstByteMs].every((l) => l.ms === 0 && l.jitterMs === 0)).toBe(true);
  });

  it('gives the cloud profile the latencies of fast cloud providers', () => {
    expect(parseProfile('cloud')).toMatchObject({
      sttFinalAfterSpeechMs: { ms: 150 },
      sttFinalizeMs: { ms: 60 },
      llmFirstTokenMs: { ms: 300 },
      llmTokenMs: { ms: 25 },
      ttsFirstByteMs: { ms: 100 },
      tts: 'elevenlabs',
    });
  });

  it('refuses a profile it does not know, naming the ones it does', () => {
    expect(() => parseProfile('fast')).toThrow('--profile must be one of zero, cloud, got "fast"');
  });

  it('draws jitter from a seed: the same sequence every run, inside the stated spread', () => {
    const l = PROFILES.cloud.llmFirstTokenMs;
    const a = Array.from({ length: 200 }, ((d) => () => d.ms(l))(new LatencyDraw(7)));
    const b = Array.from({ length: 200 }, ((d) => () => d.ms(l))(new LatencyDraw(7)));
    expect(a).toEqual(b);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(l.ms - l.jitterMs);
    expect(Math.max(...a)).toBeLessThanOrEqual(l.ms + l.jitterMs);
    expect(new Set(a).size).toBeGreaterThan(50);
  });
});
