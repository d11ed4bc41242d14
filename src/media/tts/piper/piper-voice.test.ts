import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testPhonemeIdMap, writeTestPiperVoice } from '../../../../test/fakes/piper-model.js';
import {
  isValidVoiceName,
  parsePiperVoiceConfig,
  phonemesToIds,
  piperVoicePaths,
  readPiperVoiceConfig,
  splitLongSentence,
} from './piper-voice.js';

const idMap = new Map<string, number[]>([
  ['_', [0]],
  ['^', [1]],
  ['$', [2]],
  ['a', [5]],
  ['b', [6]],
  ['ch', [7, 8]],
]);

describe('phoneme ids', () => {
  it('frames a sentence as bos, pad, then each phoneme followed by pad, then eos', () => {
    expect(phonemesToIds(['a', 'b'], idMap).ids).toEqual([1, 0, 5, 0, 6, 0, 2]);
  });

  it('puts every id of a multi-id phoneme before its pad', () => {
    expect(phonemesToIds(['ch', 'a'], idMap).ids).toEqual([1, 0, 7, 8, 0, 5, 0, 2]);
  });

  it('skips phonemes missing from the map and reports each once', () => {
    const { ids, missing } = phonemesToIds(['a', '@', 'b', '@', '#'], idMap);
    expect(ids).toEqual([1, 0, 5, 0, 6, 0, 2]);
    expect(missing).toEqual(['@', '#']);
  });

  it('gives an empty sentence just bos, pad and eos', () => {
    expect(phonemesToIds([], idMap).ids).toEqual([1, 0, 2]);
  });
});

describe('voice config', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'piper-voice-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads the fields synthesis needs from a Piper .onnx.json', async () => {
    const { configPath } = await writeTestPiperVoice(dir, 'cfg', { speakers: 3, sampleRate: 16000 });
    const config = await readPiperVoiceConfig(configPath);
    expect(config).toMatchObject({
      sampleRate: 16000,
      phonemeType: 'text',
      espeakVoice: 'en-us',
      numSpeakers: 3,
      noiseScale: 0.667,
      lengthScale: 1,
      noiseW: 0.8,
      languageCode: 'en_US',
    });
    expect(config.speakerIdMap).toEqual({ speaker_0: 0, speaker_1: 1, speaker_2: 2 });
    expect(config.phonemeIdMap.get('a')).toEqual(testPhonemeIdMap().a);
  });

  it('names the field when a config lacks the pad symbol', () => {
    const map = testPhonemeIdMap();
    delete map._;
    expect(() => parsePiperVoiceConfig({ audio: { sample_rate: 22050 }, phoneme_type: 'text', phoneme_id_map: map }, 'x.onnx.json')).toThrow(
      /x\.onnx\.json: phoneme_id_map lacks the "_" symbol/,
    );
  });

  it('rejects a config without a sample rate', () => {
    expect(() => parsePiperVoiceConfig({ phoneme_type: 'text', phoneme_id_map: testPhonemeIdMap() })).toThrow(/audio\.sample_rate/);
  });

  it('rejects an unknown phoneme type', () => {
    expect(() => parsePiperVoiceConfig({ audio: { sample_rate: 22050 }, phoneme_type: 'pinyin', phoneme_id_map: testPhonemeIdMap() })).toThrow(
      /phoneme_type must be "espeak" or "text"/,
    );
  });

  it('requires an espeak voice for espeak phonemes', () => {
    expect(() => parsePiperVoiceConfig({ audio: { sample_rate: 22050 }, phoneme_type: 'espeak', phoneme_id_map: testPhonemeIdMap() })).toThrow(
      /espeak\.voice is required/,
    );
  });

  it('says which file is not JSON', async () => {
    const path = join(dir, 'broken.onnx.json');
    await writeFile(path, '{ not json');
    await expect(readPiperVoiceConfig(path)).rejects.toThrow(`${path} is not valid JSON`);
  });
});

describe('voice names', () => {
  it.each(['en_US-lessac-medium', 'test-voice', 'de_DE.thorsten', 'v2'])('accepts %s', (name) => {
    expect(isValidVoiceName(name)).toBe(true);
  });

  it.each(['', '..', '.hidden', '../etc/passwd', 'a/b', 'a\\b', 'voice name', '-rf'])('rejects %j', (name) => {
    expect(isValidVoiceName(name)).toBe(false);
  });

  it('refuses to build a path from a name that would leave the voices directory', () => {
    expect(() => piperVoicePaths('/voices', '../secret')).toThrow(/invalid Piper voice name/);
  });

  it('puts the model and its config side by side in the voices directory', () => {
    expect(piperVoicePaths('/voices', 'en_US-amy-low')).toEqual({
      onnxPath: '/voices/en_US-amy-low.onnx',
      configPath: '/voices/en_US-amy-low.onnx.json',
    });
  });
});

describe('long sentences', () => {
  const chars = (s: string) => [...s];

  it('leaves a sentence within the limit whole', () => {
    expect(splitLongSentence(chars('hello there.'), 50)).toEqual([chars('hello there.')]);
  });

  it('cuts a long sentence after its last clause punctuation before the limit', () => {
    expect(splitLongSentence(chars('one two, three four five'), 14).map((p) => p.join(''))).toEqual(['one two,', 'three four', 'five']);
  });

  it('cuts at a space when no punctuation is in reach', () => {
    expect(splitLongSentence(chars('aaaa bbbb cccc'), 10).map((p) => p.join(''))).toEqual(['aaaa bbbb', 'cccc']);
  });

  it('never yields a piece longer than the limit', () => {
    const pieces = splitLongSentence(chars('x'.repeat(25)), 10);
    expect(pieces.map((p) => p.length)).toEqual([10, 10, 5]);
  });
});
