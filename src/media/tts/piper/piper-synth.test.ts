// Runs the real onnxruntime-node session on the tiny test voice (test/fakes/piper-model.ts), whose output
// length is known exactly: 256 samples per phoneme id times length_scale.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_BASE_HZ, TEST_SAMPLES_PER_ID, writeTestPiperVoice } from '../../../../test/fakes/piper-model.js';
import { mulawToPcm16 } from '../../audio/mulaw.js';
import { TextPhonemizer } from './phonemizer.js';
import { PiperSynthesizer, PiperVoice, piperAudioToPcm16, synthesizePiperMulaw, type PiperStats } from './piper-synth.js';
import { phonemesToIds } from './piper-voice.js';

const FRAME = 160;
const text = new TextPhonemizer();

let dir: string;
let voice: PiperVoice;
let multi: PiperVoice;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'piper-synth-'));
  await writeTestPiperVoice(dir, 'test-voice');
  await writeTestPiperVoice(dir, 'multi', { speakers: 3 });
  voice = await PiperVoice.load(dir, 'test-voice');
  multi = await PiperVoice.load(dir, 'multi');
});
afterAll(async () => {
  await voice.release();
  await multi.release();
  await rm(dir, { recursive: true, force: true });
});

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

const concat = (chunks: Uint8Array[]) => {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
};

const rms = (pcm: Int16Array) => Math.sqrt(pcm.reduce((s, x) => s + x * x, 0) / Math.max(1, pcm.length));

/** Sign changes per second: twice the frequency of a pure tone. */
function zeroCrossingsPerSecond(audio: Float32Array, sampleRate: number): number {
  let n = 0;
  for (let i = 1; i < audio.length; i++) if (audio[i - 1]! < 0 !== audio[i]! < 0) n++;
  return n / (audio.length / sampleRate);
}

/** Model output samples the test voice renders for `input` at length_scale `scale`. */
async function expectedModelSamples(input: string, scale = 1): Promise<number> {
  let total = 0;
  for (const sentence of await text.phonemize(input)) {
    total += Math.floor(phonemesToIds(sentence, voice.config.phonemeIdMap).ids.length * TEST_SAMPLES_PER_ID * scale);
  }
  return total;
}

describe('PiperVoice', () => {
  it('feeds Piper inputs and gets audio whose length follows the phoneme count', async () => {
    const audio = await voice.infer([1, 0, 20, 0, 2]);
    expect(audio.length).toBe(5 * TEST_SAMPLES_PER_ID);
  });

  it('makes speech twice as fast at speed 2 by halving length_scale', async () => {
    const ids = [1, 0, 20, 0, 21, 0, 2];
    const normal = await voice.infer(ids, { speed: 1 });
    const fast = await voice.infer(ids, { speed: 2 });
    const slow = await voice.infer(ids, { speed: 0.5 });
    expect(fast.length).toBe(normal.length / 2);
    expect(slow.length).toBe(normal.length * 2);
  });

  it('passes the speaker id as sid to a multi-speaker model', async () => {
    const ids = Array.from({ length: 41 }, (_, i) => (i % 2 ? 0 : 20));
    const first = await multi.infer(ids, { speakerId: 0 });
    const third = await multi.infer(ids, { speakerId: 2 });
    // The test model sounds speaker k at (k + 1) x 220 Hz.
    expect(zeroCrossingsPerSecond(first, 22050) / 2).toBeCloseTo(TEST_BASE_HZ, -1);
    expect(zeroCrossingsPerSecond(third, 22050) / 2).toBeCloseTo(3 * TEST_BASE_HZ, -1);
  });

  it('rejects a speaker the voice does not have', async () => {
    await expect(multi.infer([1, 0, 2], { speakerId: 3 })).rejects.toThrow(/speaker 3 does not exist in Piper voice "multi" \(3 speakers\)/);
  });

  it('rejects a speed that is not a positive number', async () => {
    await expect(voice.infer([1, 0, 2], { speed: 0 })).rejects.toThrow(/speed must be a positive number/);
  });

  it('says a voice is not installed when its files are missing', async () => {
    await expect(PiperVoice.load(dir, 'nobody')).rejects.toThrow(/Piper voice "nobody" is not installed: .*nobody\.onnx\.json does not exist/);
  });

  it('refuses a config whose speakers the model has no sid input for', async () => {
    await writeTestPiperVoice(dir, 'mismatch', { config: { num_speakers: 2 } });
    await expect(PiperVoice.load(dir, 'mismatch')).rejects.toThrow(/is not a Piper model for its config: .*expected inputs \[input, input_lengths, scales, sid\]/);
  });

  it('reports a model file onnxruntime cannot load', async () => {
    await writeTestPiperVoice(dir, 'garbage');
    await writeFile(join(dir, 'garbage.onnx'), 'not a model');
    await expect(PiperVoice.load(dir, 'garbage')).rejects.toThrow(/cannot load Piper model .*garbage\.onnx/);
  });
});

describe('Piper output to PCM16', () => {
  it('scales the peak to full scale', () => {
    const pcm = piperAudioToPcm16(Float32Array.of(0.25, -0.5, 0.1));
    expect(Array.from(pcm)).toEqual([16384, -32767, 6553]);
  });

  it('does not amplify near-silence beyond a peak of 0.01', () => {
    const pcm = piperAudioToPcm16(Float32Array.of(0.001, -0.002));
    expect(Array.from(pcm)).toEqual([3277, -6553]);
  });
});

describe('synthesizePiperMulaw', () => {
  it('yields audible 8 kHz mu-law as long as the model output resampled', async () => {
    const input = 'hello there, caller.';
    const audio = concat(await collect(synthesizePiperMulaw(voice, text, input)));
    const expected = ((await expectedModelSamples(input)) * 8000) / voice.config.sampleRate;
    expect(Math.abs(audio.length - expected)).toBeLessThan(FRAME);
    expect(rms(mulawToPcm16(audio))).toBeGreaterThan(5000);
  });

  it('yields a chunk per sentence and keeps the total length of all sentences', async () => {
    const input = 'First one. Second one here! And a third?';
    const chunks = await collect(synthesizePiperMulaw(voice, text, input));
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    const expected = ((await expectedModelSamples(input)) * 8000) / voice.config.sampleRate;
    expect(Math.abs(concat(chunks).length - expected)).toBeLessThan(FRAME);
  });

  it('makes audio half as long at speed 2', async () => {
    const input = 'speed test sentence.';
    const normal = concat(await collect(synthesizePiperMulaw(voice, text, input)));
    const fast = concat(await collect(synthesizePiperMulaw(voice, text, input, { speed: 2 })));
    expect(Math.abs(fast.length - normal.length / 2)).toBeLessThan(FRAME);
  });

  it('reports audio duration and synthesis time', async () => {
    const stats: PiperStats = { synthMs: 0, audioMs: 0, runs: 0 };
    await collect(synthesizePiperMulaw(voice, text, 'One. Two.', {}, stats));
    expect(stats.runs).toBe(2);
    expect(stats.audioMs).toBeCloseTo(((await expectedModelSamples('One. Two.')) / 22050) * 1000, 3);
    expect(stats.synthMs).toBeGreaterThan(0);
  });

  it('stops before the next sentence once aborted', async () => {
    const abort = new AbortController();
    const chunks: Uint8Array[] = [];
    for await (const chunk of synthesizePiperMulaw(voice, text, 'One. Two. Three. Four.', { signal: abort.signal })) {
      chunks.push(chunk);
      abort.abort();
    }
    expect(chunks).toHaveLength(1);
  });

  it('cuts a very long sentence into several model runs', async () => {
    const stats: PiperStats = { synthMs: 0, audioMs: 0, runs: 0 };
    const long = `${Array.from({ length: 30 }, (_, i) => `clause number ${i}`).join(', ')}.`;
    await collect(synthesizePiperMulaw(voice, text, long, { maxPhonemesPerRun: 100 }, stats));
    expect(stats.runs).toBeGreaterThan(long.length / 100);
  });
});

describe('PiperSynthesizer', () => {
  it('loads voices lazily and keeps only the most recently used ones', async () => {
    const piper = new PiperSynthesizer({ voicesDir: dir, maxVoices: 1 });
    await collect(piper.synthesize('hi.', 'test-voice'));
    expect(piper.loadedVoices()).toEqual(['test-voice']);
    await collect(piper.synthesize('hi.', 'multi', { speakerId: 1 }));
    expect(piper.loadedVoices()).toEqual(['multi']);
    await piper.close();
  });

  it('logs each phoneme the voice cannot say once, and still speaks the rest', async () => {
    const logs: string[] = [];
    const piper = new PiperSynthesizer({ voicesDir: dir, onLog: (m) => logs.push(m) });
    const first = await collect(piper.synthesize('a @ b.', 'test-voice'));
    await collect(piper.synthesize('@ again.', 'test-voice'));
    expect(first.length).toBeGreaterThan(0);
    expect(logs).toEqual(['Piper voice "test-voice" has no ids for "@"; skipped']);
    await piper.close();
  });

  it('fails the request, not the synthesizer, for a voice that is not installed', async () => {
    const piper = new PiperSynthesizer({ voicesDir: dir });
    await expect(collect(piper.synthesize('hi.', 'absent'))).rejects.toThrow(/not installed/);
    expect(piper.loadedVoices()).toEqual([]);
    expect((await collect(piper.synthesize('hi.', 'test-voice'))).length).toBeGreaterThan(0);
    await piper.close();
  });
});
