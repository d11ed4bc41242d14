import { describe, expect, it } from 'vitest';
import { SentenceChunker } from './sentence-chunker.js';

// Streams `text` into a chunker a few characters at a time, as an LLM does.
function chunkStreamed(text: string, step = 3, chunker = new SentenceChunker()): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += step) out.push(...chunker.push(text.slice(i, i + step)));
  out.push(...chunker.flush());
  return out;
}

describe('SentenceChunker', () => {
  it('cuts streamed text at sentence ends', () => {
    expect(chunkStreamed('Hello there. How are you today? I am fine!')).toEqual(['Hello there.', 'How are you today?', 'I am fine!']);
  });

  it('does not cut a decimal number or an abbreviation', () => {
    expect(chunkStreamed('It costs 3.50 dollars. Dr. Smith will see you at 5 p.m. tomorrow. Thanks.')).toEqual([
      'It costs 3.50 dollars.',
      'Dr. Smith will see you at 5 p.m. tomorrow.',
      'Thanks.',
    ]);
  });

  it('lets the first chunk end at a clause so speech starts sooner', () => {
    expect(chunkStreamed('Sure thing, I will send you a confirmation. Anything else?')).toEqual(['Sure thing,', 'I will send you a confirmation.', 'Anything else?']);
  });

  it('lets the first chunk end after a few words when no clause boundary comes', () => {
    expect(chunkStreamed('I have booked the table for four people tomorrow evening at seven. See you then.')).toEqual([
      'I have booked the table',
      'for four people tomorrow evening at seven.',
      'See you then.',
    ]);
  });

  it('cuts text that arrives at once where a stream of it would be cut', () => {
    const text = 'Our kitchen opens at nine every weekday morning. Closes late.';
    const chunker = new SentenceChunker();
    expect([...chunker.push(text), ...chunker.flush()]).toEqual(chunkStreamed(text));
    expect(chunkStreamed(text)).toEqual(['Our kitchen opens at nine', 'every weekday morning.', 'Closes late.']);
  });

  it('does not end the first chunk on a word that leads on, or on a number before its unit', () => {
    expect(chunkStreamed('I can put you on the list for Friday. Bye.')).toEqual(['I can put you on the list', 'for Friday.', 'Bye.']);
    expect(chunkStreamed('That will be 3,500 dollars in total.')).toEqual(['That will be 3,500 dollars', 'in total.']);
  });

  it('does not end the first chunk at a clause shorter than its minimum', () => {
    expect(chunkStreamed('Sure, we open at nine.')).toEqual(['Sure, we open at nine.']);
  });

  it('lets a first clause of two words go ahead', () => {
    expect(chunkStreamed('Of course, a table for two is no problem. What day?')).toEqual(['Of course,', 'a table for two is no problem.', 'What day?']);
  });

  it('ends the first chunk as soon as its punctuation arrives after a word', () => {
    const chunker = new SentenceChunker();
    expect(chunker.push('Of course')).toEqual([]);
    expect(chunker.push(',')).toEqual(['Of course,']);
    const sentence = new SentenceChunker();
    expect(sentence.push('We open at nine')).toEqual([]);
    expect(sentence.push('.')).toEqual(['We open at nine.']);
  });

  it('waits for what follows a first-chunk comma or period after a digit or an abbreviation', () => {
    const chunker = new SentenceChunker();
    expect(chunker.push('It comes to 3,')).toEqual([]);
    expect(chunker.push('500 dollars. ')).toEqual(['It comes to 3,500 dollars.']);
    const doctor = new SentenceChunker();
    expect(doctor.push('Dr.')).toEqual([]);
    expect(doctor.push(' Lee is in. ')).toEqual(['Dr. Lee is in.']);
  });

  it('waits for the character after a period before deciding', () => {
    const chunker = new SentenceChunker();
    expect(chunker.push('The total is 3.')).toEqual([]);
    expect(chunker.push('5 euros. ')).toEqual(['The total is 3.5 euros.']);
  });

  it('cuts a run-on sentence at a space before the maximum length', () => {
    const words = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
    const chunks = chunkStreamed(words, 5, new SentenceChunker({ maxChars: 80 }));
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(80);
    expect(chunks.join(' ')).toBe(words);
  });

  it('returns the unterminated rest on flush and nothing for whitespace', () => {
    const chunker = new SentenceChunker();
    expect(chunker.push('No punctuation here')).toEqual([]);
    expect(chunker.flush()).toEqual(['No punctuation here']);
    chunker.push('   ');
    expect(chunker.flush()).toEqual([]);
  });
});
