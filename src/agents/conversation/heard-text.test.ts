import { describe, expect, it } from 'vitest';
import { cutAtWord, heardPart, type SpokenChunk } from './heard-text.js';

const chunk = (fields: Partial<SpokenChunk> = {}): SpokenChunk => ({ text: 'We open at nine every morning.', startMs: 1000, audioMs: 3000, complete: true, ...fields });

describe('heard text', () => {
  it('keeps a word once speech has passed its middle', () => {
    expect(cutAtWord('We open at nine', 0)).toBe('');
    expect(cutAtWord('We open at nine', 1)).toBe('We');
    expect(cutAtWord('We open at nine', 4)).toBe('We');
    expect(cutAtWord('We open at nine', 5.5)).toBe('We open');
    expect(cutAtWord('We open at nine', 99)).toBe('We open at nine');
  });

  it('cuts a playing chunk in proportion to its played time', () => {
    // 30 characters over 3 s: 1.5 s played reached character 15, inside "nine".
    expect(heardPart(chunk(), 2500)).toBe('We open at nine');
    expect(heardPart(chunk(), 1000)).toBe('');
    expect(heardPart(chunk(), 4000)).toBe('We open at nine every morning.');
  });

  it('follows the TTS character timings when it gave them', () => {
    // All the time goes to the first word: 2 s played is still inside "We".
    const text = 'We open';
    const charEndsMs = [1500, 2500, 2600, 2700, 2800, 2900, 3000];
    expect(heardPart(chunk({ text, charEndsMs }), 3000)).toBe('We');
    expect(heardPart(chunk({ text, charEndsMs }), 2000)).toBe('');
  });

  it('estimates the length of a chunk whose audio is still arriving from the pace so far', () => {
    // 1 s of audio arrived for 30 characters at 100 ms each (3 s in all): 1 s played is a third.
    expect(heardPart(chunk({ audioMs: 1000, complete: false }), 2000, 100)).toBe('We open at');
    // Never past the audio that exists.
    expect(heardPart(chunk({ audioMs: 1000, complete: false }), 9000, 100)).toBe('We open at');
  });
});
