import { afterEach, describe, expect, it, vi } from 'vitest';
import { TurnDetector, type UserTurn } from './turn-detector.js';

function detector(capMs = 1000) {
  const turns: UserTurn[] = [];
  let finalizeRequests = 0;
  let now = 1_000_000;
  const d = new TurnDetector({ capMs, now: () => now }, (t) => turns.push(t), () => finalizeRequests++);
  return { d, turns, finalizes: () => finalizeRequests, advance: (ms: number) => (now += ms), at: () => now };
}

describe('TurnDetector', () => {
  afterEach(() => vi.useRealTimers());

  it('waits for the STT final when VAD ends first, then ends the turn', () => {
    const { d, turns, advance, at } = detector();
    d.speechStarted();
    d.speechEnded(2500, at());
    expect(turns).toHaveLength(0);
    advance(120);
    d.sttFinal('book a table', 2.6, true);
    expect(turns).toEqual([{ text: 'book a table', endOfSpeechAt: at() - 120, sttFinalAt: at() }]);
  });

  it('waits for VAD silence when the STT final comes first', () => {
    const { d, turns, at } = detector();
    d.speechStarted();
    d.sttFinal('hello', 1.2, true);
    expect(turns).toHaveLength(0);
    d.speechEnded(1300, at());
    expect(turns.map((t) => t.text)).toEqual(['hello']);
  });

  it('does not end the turn on a final that covers only earlier audio', () => {
    const { d, turns, at } = detector();
    d.speechStarted();
    d.sttFinal('I would like', 1.0, false);
    d.speechEnded(3000, at());
    expect(turns).toHaveLength(0);
    d.sttFinal('a table for two', 3.1, true);
    expect(turns.map((t) => t.text)).toEqual(['I would like a table for two']);
  });

  it('asks the STT to finalize when VAD ends before the final', () => {
    const { d, finalizes, at } = detector();
    d.speechStarted();
    d.speechEnded(1000, at());
    expect(finalizes()).toBe(1);
  });

  it('ends the turn at the cap with the words it has when no final comes', () => {
    vi.useFakeTimers();
    const { d, turns, at } = detector(800);
    d.speechStarted();
    d.sttFinal('partial words', 0.5, false);
    d.speechEnded(2000, at());
    vi.advanceTimersByTime(799);
    expect(turns).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(turns).toEqual([{ text: 'partial words', endOfSpeechAt: at(), sttFinalAt: null }]);
  });

  it('ignores speech without words', () => {
    vi.useFakeTimers();
    const { d, turns, at } = detector(500);
    d.speechStarted();
    d.speechEnded(800, at());
    d.sttFinal('', 0.9, true);
    vi.advanceTimersByTime(1000);
    expect(turns).toHaveLength(0);
  });

  it('takes a word too short for VAD from the STT endpointing alone', () => {
    const { d, turns } = detector();
    d.sttFinal('Yes.', 0.4, true);
    expect(turns.map((t) => t.text)).toEqual(['Yes.']);
  });

  it('keeps waiting when the caller resumes before the final caught up', () => {
    const { d, turns, at } = detector();
    d.speechStarted();
    d.sttFinal('I would like', 0.5, false);
    d.speechEnded(1100, at());
    d.speechStarted();
    d.sttFinal('a table', 2.0, false);
    expect(turns).toHaveLength(0);
    d.speechEnded(2400, at());
    d.sttFinal('for two', 2.5, true);
    expect(turns.map((t) => t.text)).toEqual(['I would like a table for two']);
  });
});
