import { afterEach, describe, expect, it, vi } from 'vitest';
import { AdaptiveEndOfTurn } from './end-of-turn.js';
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

  describe('with the adaptive end-of-turn policy', () => {
    function adaptive() {
      vi.useFakeTimers();
      const turns: UserTurn[] = [];
      const hooks: string[] = [];
      const d = new TurnDetector({ capMs: 1200, policy: new AdaptiveEndOfTurn(250, 900) }, (t) => turns.push(t), () => {}, {
        onPause: (text) => hooks.push(`pause: ${text}`),
        onResume: () => hooks.push('resume'),
      });
      return { d, turns, hooks };
    }

    it('ends a finished sentence at the VAD speech end, with the short silence on the turn', () => {
      const { d, turns } = adaptive();
      d.speechStarted();
      d.speechEnded(1500, Date.now());
      d.sttFinal('Can I speak to billing?', 1.5, false);
      expect(turns).toEqual([expect.objectContaining({ text: 'Can I speak to billing?', endOfTurnSilenceMs: 250 })]);
    });

    it('reports the pause after unfinished words, then ends the turn once the longest silence has passed', () => {
      const { d, turns, hooks } = adaptive();
      d.speechStarted();
      d.speechEnded(1500, Date.now());
      d.sttFinal('I need billing because', 1.5, false);
      expect(hooks).toEqual(['pause: I need billing because']);
      vi.advanceTimersByTime(900 - 250 - 1);
      expect(turns).toHaveLength(0);
      vi.advanceTimersByTime(1);
      expect(turns.map((t) => [t.text, t.endOfTurnSilenceMs])).toEqual([['I need billing because', 900]]);
    });

    /** Level frames: voiced up to `voicedToMs`, then silent up to `toMs` (20 ms each). */
    function frames(d: TurnDetector, fromMs: number, voicedToMs: number, toMs: number): void {
      for (let t = fromMs + 20; t <= toMs; t += 20) d.audioFrame(t <= voicedToMs, t);
    }

    it('reports an early pause only once a final reaches the end of the voice, not on an older final', () => {
      const { d, hooks } = adaptive();
      d.speechStarted();
      d.sttFinal('I would like a table.', 1.0, false);
      frames(d, 0, 1500, 1600);
      d.speechQuiet(true, 1590);
      expect(hooks).toEqual([]);
      d.sttFinal('', 1.6, false);
      expect(hooks).toEqual(['pause: I would like a table.']);
    });

    it('reports an early pause at once, with no Finalize, when a final reaches the end of the voice already', () => {
      vi.useFakeTimers();
      const hooks: string[] = [];
      let finalizes = 0;
      const d = new TurnDetector({ capMs: 1200, policy: new AdaptiveEndOfTurn(250, 900) }, () => {}, () => finalizes++, { onPause: (text) => hooks.push(`pause: ${text}`) });
      d.speechStarted();
      d.sttFinal('I would like a table.', 1.5, false);
      d.speechQuiet(true, 1560);
      frames(d, 0, 1500, 1600);
      expect(hooks).toEqual(['pause: I would like a table.']);
      expect(finalizes).toBe(0);
    });

    it('reports a resume when voice comes back after an early pause, before VAD notices', () => {
      const { d, hooks } = adaptive();
      d.speechStarted();
      frames(d, 0, 1500, 1600);
      d.speechQuiet(true, 1590);
      d.sttFinal('I would like a table.', 1.6, false);
      frames(d, 1600, 1620, 1620);
      expect(hooks).toEqual(['pause: I would like a table.', 'resume']);
    });

    it('reports a resume when the caller goes on during the wait, and keeps their words for the turn', () => {
      const { d, turns, hooks } = adaptive();
      d.speechStarted();
      d.speechEnded(1500, Date.now());
      d.sttFinal('I need billing because', 1.5, false);
      vi.advanceTimersByTime(300);
      d.speechStarted();
      expect(hooks).toEqual(['pause: I need billing because', 'resume']);
      vi.advanceTimersByTime(2000);
      expect(turns).toHaveLength(0);
      d.speechEnded(3000, Date.now());
      d.sttFinal('my card was declined.', 3.0, false);
      expect(turns.map((t) => t.text)).toEqual(['I need billing because my card was declined.']);
    });
  });
});
