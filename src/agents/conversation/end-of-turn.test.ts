import { describe, expect, it } from 'vitest';
import { AdaptiveEndOfTurn, FixedEndOfTurn, endOfTurnPolicy, looksFinished, vadOptionsFor } from './end-of-turn.js';
import { AGENT_DEFAULTS } from '../agents.service.js';

describe('looksFinished', () => {
  it.each(['What time do you open?', 'I would like a table for two.', 'No, thank you.', 'Yes, I do.', 'What is it for?', 'yes', 'thank you', 'Great!'])('reads "%s" as finished', (text) => {
    expect(looksFinished(text)).toBe(true);
  });

  it.each(['', 'I would like a table and', 'So, uh,', 'I am calling because', 'I want, um.', 'My account number is', 'Book a table for', 'The address is:', 'Yes,', 'I want the'])(
    'reads "%s" as unfinished',
    (text) => {
      expect(looksFinished(text)).toBe(false);
    },
  );
});

describe('end-of-turn policies', () => {
  it('adaptive: the short silence after finished words, the long one after unfinished words', () => {
    const policy = new AdaptiveEndOfTurn(250, 900);
    expect(policy.silenceMs({ text: 'Can I speak to billing?' })).toBe(250);
    expect(policy.silenceMs({ text: 'I need to speak to billing because' })).toBe(900);
    expect(policy.vadSilenceMs).toBe(250);
  });

  it('fixed: the endpointing silence whatever the words', () => {
    const policy = new FixedEndOfTurn(400);
    expect(policy.silenceMs()).toBe(400);
    expect(policy.adaptive).toBe(false);
  });

  it('is adaptive for a new agent, and its VAD reports the short pause and quick resumes', () => {
    const agent = { stt: AGENT_DEFAULTS.stt, turnDetection: AGENT_DEFAULTS.turnDetection };
    expect(endOfTurnPolicy(agent).adaptive).toBe(true);
    expect(vadOptionsFor(agent)).toEqual({ minSilenceMs: 250, resumeWithinMs: 900, reportPauses: true });
  });

  it('fixed mode keeps the VAD at the endpointing silence', () => {
    const agent = { stt: { ...AGENT_DEFAULTS.stt, endpointingMs: 600 }, turnDetection: { mode: 'fixed' as const, minSilenceMs: 250, maxSilenceMs: 900 } };
    expect(vadOptionsFor(agent)).toEqual({ minSilenceMs: 600 });
  });
});
