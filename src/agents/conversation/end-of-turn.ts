// When has the caller finished? Silence alone is a poor answer: people pause mid-sentence ("a table for,
// um, ... four") and answer "yes." at once. The engine asks an end-of-turn policy how long a pause must
// last for the words heard so far; the rules below are the first policy, and a learned classifier (an ONNX
// model in the media worker, scoring the caller's audio) can take its place behind the same interface.
import type { Agent, TurnDetectionSettings } from '../agents.schemas.js';

/** What a policy decides on. */
export interface EndOfTurnInput {
  /** The caller's words of this turn so far (STT finals, punctuated as the STT gives them). */
  text: string;
  /**
   * The probability that the turn is over, from a model that heard the audio (a classifier in the media
   * worker), when one runs. The rule-based policy ignores it.
   */
  modelScore?: number;
}

/**
 * Decides how long a pause ends the caller's turn. The engine asks again whenever the words change
 * during a pause, so a policy must be cheap and synchronous (scores from a model arrive in the input).
 */
export interface EndOfTurnPolicy {
  /** Silence (ms since the caller's last voiced audio) after which a turn with these words is over. */
  silenceMs(input: EndOfTurnInput): number;
  /** The shortest pause the VAD must report for the engine to ask: VAD's speech end comes after it. */
  readonly vadSilenceMs: number;
  /** Whether pauses shorter than the longest wait are worth reporting (and preempting the LLM on). */
  readonly adaptive: boolean;
}

/** Today's rule: one fixed silence (the agent's `stt.endpointingMs`) ends every turn. */
export class FixedEndOfTurn implements EndOfTurnPolicy {
  readonly adaptive = false;
  constructor(readonly vadSilenceMs: number) {}

  silenceMs(): number {
    return this.vadSilenceMs;
  }
}

// Words a turn does not end on even when the STT put a full stop after them: conjunctions, fillers,
// articles and possessives ("... and.", "um."). Lower case, without punctuation.
const NEVER_LAST = new Set([
  'and', 'or', 'but', 'so', 'because', 'cause', 'although', 'though', 'unless', 'whereas',
  'um', 'uh', 'er', 'erm', 'hmm', 'uhm', 'umm',
  'the', 'a', 'an', 'my', 'your', 'our', 'their', 'his', 'her', 'its',
]);

// Short complete answers an STT may leave unpunctuated.
const SHORT_ANSWERS = new Set(['yes', 'yeah', 'yep', 'no', 'nope', 'okay', 'ok', 'sure', 'right', 'thanks', 'thank you', 'correct', 'hello', 'hi', 'bye', 'goodbye', 'please']);

/**
 * Reads how finished the words look: a sentence or question that ends with its punctuation (and not on
 * "and", "so", "um", "because", "the") ends the turn after `minSilenceMs`; a trailing conjunction or filler,
 * a comma, or an unpunctuated clause waits `maxSilenceMs`; no words yet (the STT is behind) waits the longest too.
 */
export class AdaptiveEndOfTurn implements EndOfTurnPolicy {
  readonly adaptive = true;

  constructor(
    private readonly minSilenceMs: number,
    private readonly maxSilenceMs: number,
  ) {}

  get vadSilenceMs(): number {
    return this.minSilenceMs;
  }

  silenceMs({ text }: EndOfTurnInput): number {
    return looksFinished(text) ? this.minSilenceMs : this.maxSilenceMs;
  }
}

/** Whether the caller's words read as a finished sentence, question or short answer. */
export function looksFinished(text: string): boolean {
  const t = text.trim();
  if (!t) return false;
  const words = t
    .toLowerCase()
    .split(/\s+/)
    .map((w) => w.replace(/^[^a-z0-9']+|[^a-z0-9']+$/g, ''))
    .filter(Boolean);
  const last = words.at(-1);
  if (!last) return false;
  if (NEVER_LAST.has(last)) return false;
  // "Yes," "for, um," "the address is:": the clause goes on.
  if (/[,;:—–-]$/.test(t)) return false;
  // "No, thank you." "What is it for?": the STT heard a sentence end.
  if (/[.!?…]["')\]]*$/.test(t)) return true;
  // Unpunctuated: only a short answer ("yes", "thank you") reads as finished.
  return SHORT_ANSWERS.has(words.join(' '));
}

/** The agent's end-of-turn policy. */
export function endOfTurnPolicy(agent: Pick<Agent, 'stt'> & { turnDetection?: TurnDetectionSettings }): EndOfTurnPolicy {
  const settings = agent.turnDetection;
  if (!settings || settings.mode === 'fixed') return new FixedEndOfTurn(agent.stt.endpointingMs);
  return new AdaptiveEndOfTurn(settings.minSilenceMs, Math.max(settings.minSilenceMs, settings.maxSilenceMs));
}

/**
 * What the call's VAD must report for the agent's policy: speech ends at the policy's shortest pause, and
 * speech that comes back within its longest wait restarts within a window or two (not after the minimum
 * speech that guards barge-in), so the engine learns at once that the caller went on.
 */
export function vadOptionsFor(agent: Pick<Agent, 'stt' | 'turnDetection'>): { minSilenceMs: number; resumeWithinMs?: number; reportPauses?: boolean } {
  const policy = endOfTurnPolicy(agent);
  if (!policy.adaptive) return { minSilenceMs: policy.vadSilenceMs };
  return {
    minSilenceMs: policy.vadSilenceMs,
    resumeWithinMs: Math.max(agent.turnDetection.minSilenceMs, agent.turnDetection.maxSilenceMs),
    // The engine starts the LLM in a pause only once the model hears it too (see TurnDetector).
    reportPauses: true,
  };
}
