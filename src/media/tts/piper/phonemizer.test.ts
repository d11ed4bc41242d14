import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EspeakPhonemizer, TextPhonemizer, splitSentences } from './phonemizer.js';

const hasEspeak = spawnSync('espeak-ng', ['--version']).error === undefined;

describe('sentence split', () => {
  it('splits at . ! ? followed by whitespace and trims', () => {
    expect(splitSentences('  Hi there!  How are you? Fine.  ')).toEqual(['Hi there!', 'How are you?', 'Fine.']);
  });

  it('keeps decimals and abbreviations without a following space together', () => {
    expect(splitSentences('It costs 3.50 dollars, e.g.that much.')).toEqual(['It costs 3.50 dollars, e.g.that much.']);
  });

  it('keeps a closing quote with its sentence', () => {
    expect(splitSentences('He said "stop." Then left.')).toEqual(['He said "stop."', 'Then left.']);
  });
});

describe('TextPhonemizer', () => {
  const text = new TextPhonemizer();

  it('uses the lowercased codepoints of each sentence as phonemes', async () => {
    expect(await text.phonemize('Hi. OK!', 'en-us')).toEqual([['h', 'i', '.'], ['o', 'k', '!']]);
  });

  it('decomposes accented letters into base letter and combining mark (NFD)', async () => {
    expect(await text.phonemize('Café', 'fr')).toEqual([['c', 'a', 'f', 'e', '\u0301']]);
  });

  it('collapses whitespace runs into one space', async () => {
    expect(await text.phonemize('a \n\t b', 'en-us')).toEqual([['a', ' ', 'b']]);
  });

  it('gives no sentences for blank text', async () => {
    expect(await text.phonemize('   ', 'en-us')).toEqual([]);
  });
});

describe('EspeakPhonemizer', () => {
  it.skipIf(!hasEspeak)('gives IPA per sentence with clause punctuation kept, like Piper', async () => {
    const sentences = await new EspeakPhonemizer().phonemize('Hello, world. How are you?', 'en-us');
    expect(sentences).toHaveLength(2);
    expect(sentences[0]!.join('')).toBe('həlˈoʊ, wˈɜːld.');
    // Stress placement varies between espeak-ng releases; the words and the terminator do not.
    expect(sentences[1]!.join('').replace(/[ˈˌ]/gu, '')).toBe('haʊ ɑːɹ juː?');
  });

  it.skipIf(!hasEspeak)('emits no tie bars or joiners, so diphthongs are separate codepoints', async () => {
    const [sentence] = await new EspeakPhonemizer().phonemize('Chair judge.', 'en-us');
    expect(sentence!.join('')).not.toMatch(/[\u0361\u035c\u200d]/u);
    expect(sentence).toContain('ʃ');
    expect(sentence).toContain('ʒ');
  });

  it.skipIf(!hasEspeak)('drops espeak-ng language-switch flags', async () => {
    const sentences = await new EspeakPhonemizer().phonemize('Ich mag das Wort Weekend.', 'de');
    expect(sentences.flat().join('')).not.toMatch(/[()]/u);
  });

  it.skipIf(!hasEspeak)('maps clauses back exactly when espeak-ng splits one further (a dash)', async () => {
    const sentences = await new EspeakPhonemizer().phonemize('Wait — really, now. Yes.', 'en-us');
    expect(sentences).toHaveLength(2);
    expect(sentences[0]!.join('')).toMatch(/, .+\.$/u);
    expect(sentences[1]!.join('')).toMatch(/\.$/u);
  });

  it.skipIf(!hasEspeak)('reports an espeak-ng voice that does not exist', async () => {
    await expect(new EspeakPhonemizer().phonemize('Hello.', 'xx-nonexistent')).rejects.toThrow(/espeak-ng failed for voice "xx-nonexistent"/);
  });

  it('refuses a voice that could be taken for an option', async () => {
    await expect(new EspeakPhonemizer().phonemize('Hello.', '--path=/tmp')).rejects.toThrow(/invalid espeak-ng voice/);
  });

  it('says plainly when the espeak-ng binary is missing', async () => {
    const missing = new EspeakPhonemizer({ binary: 'espeak-ng-not-installed-here' });
    await expect(missing.phonemize('Hello.', 'en-us')).rejects.toThrow(/espeak-ng is not installed .*apt-get install espeak-ng/);
  });
});
