import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { speechSpan } from '../../simulator/script.js';
import { MULAW_SILENCE, pcm16ToMulaw } from './mulaw.js';
import { sine } from './signals.js';
import { isVoiced, LastVoicedFrame } from './speech-level.js';

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/audio');
const FRAME = 160;
// A full-scale-relative sine's RMS is 3 dB below its peak level: -29 dBFS peak is -32 dBFS RMS, -36 is -39.
const tone = (dbfs: number) => pcm16ToMulaw(sine({ frequency: 440, sampleRate: 8000, length: FRAME, dbfs }));
const silence = () => new Uint8Array(FRAME).fill(MULAW_SILENCE);

describe('the voiced-frame level rule', () => {
  it('counts a 20 ms frame above -35 dBFS RMS as voiced and one below it as not', () => {
    expect(isVoiced(tone(-29))).toBe(true);
    expect(isVoiced(tone(-36))).toBe(false);
    expect(isVoiced(silence())).toBe(false);
  });

  it('judges a slice of a longer buffer by that slice alone', () => {
    const audio = new Uint8Array(FRAME * 2);
    audio.set(silence());
    audio.set(tone(-20), FRAME);
    expect(isVoiced(audio, 0, FRAME)).toBe(false);
    expect(isVoiced(audio, FRAME, FRAME * 2)).toBe(true);
  });

  it('puts the last voiced frame of a fixture where the simulator says its speech ends', () => {
    const audio = new Uint8Array(readFileSync(join(FIXTURES, 'two-utterances.ulaw')));
    const voiced = new LastVoicedFrame();
    for (let i = 0; i < audio.length; i += FRAME) voiced.push(audio.subarray(i, i + FRAME), i);
    expect(voiced.frame!.streamEndMs).toBe(speechSpan(audio)!.endMs);
  });
});

describe('LastVoicedFrame', () => {
  it('keeps the stream time and arrival of the last voiced frame, not of the quiet frames after it', () => {
    const voiced = new LastVoicedFrame();
    voiced.push(silence(), 1000);
    expect(voiced.frame).toBeNull();
    voiced.push(tone(-20), 1020);
    voiced.push(tone(-20), 1040);
    voiced.push(silence(), 1060);
    voiced.push(tone(-36), 1080);
    expect(voiced.frame).toEqual({ streamEndMs: 60, at: 1040 });
  });
});
