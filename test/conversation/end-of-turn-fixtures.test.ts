// End of turn on real speech: espeak-ng utterances with pauses inside the sentence and complete ones
// (scripts/make-pause-fixtures.sh), through the real Silero VAD with the options the media worker gets for
// the default agent, into the conversation engine on the harness's clock. The STT is simulated from the
// fixture manifest: after each VAD speech end, the words of every piece that ended before it, 60 ms later
// (Deepgram's final after `Finalize`).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { vadOptionsFor } from '../../src/agents/conversation/end-of-turn.js';
import { mulawToPcm16 } from '../../src/media/audio/mulaw.js';
import { loadSileroModel, releaseSileroModel, type SileroModel } from '../../src/media/vad/silero-model.js';
import { SileroVadStream } from '../../src/media/vad/silero-vad.js';
import { ConversationHarness } from '../helpers/conversation-harness.js';

const DIR = new URL('../fixtures/audio/pauses/', import.meta.url);

interface Piece {
  startMs: number;
  endMs: number;
  text: string;
}
const manifest = JSON.parse(readFileSync(new URL('pauses.json', DIR), 'utf8')) as { files: Record<string, { speech: Piece[] }> };
const names = Object.keys(manifest.files);

const FRAME = 160; // 20 ms, as Twilio sends
const FINAL_AFTER_MS = 60;
// Short wait: the policy's 250 ms, plus what VAD needs to see the silence (a 32 ms window and the model's
// lag) and the STT final.
const SHORT_WAIT_MS = 250 + 150 + FINAL_AFTER_MS;

interface Outcome {
  name: string;
  /** Pauses inside the turn the caller went on after. */
  pauses: number;
  /** Caller turns confirmed before the caller's last piece began: the agent would have cut in. */
  cutIns: number;
  /** Caller's last voiced audio to the turn's confirmation, ms (null: never confirmed). */
  waitMs: number | null;
  text: string;
}

let model: SileroModel;
const outcomes: Outcome[] = [];

beforeAll(async () => {
  model = await loadSileroModel();
});

afterAll(async () => {
  await releaseSileroModel();
  if (outcomes.length < names.length) return;
  const pauses = outcomes.reduce((n, o) => n + o.pauses, 0);
  const cutIns = outcomes.reduce((n, o) => n + o.cutIns, 0);
  const short = outcomes.filter((o) => o.waitMs !== null && o.waitMs <= SHORT_WAIT_MS).length;
  const waits = outcomes.map((o) => `${o.name}=${o.waitMs}`).join(' ');
  console.log(
    `[end-of-turn fixtures] false cut-ins: ${cutIns}/${pauses} pauses (${pct(cutIns, pauses)}); ` +
      `turns answered after the short wait (<= ${SHORT_WAIT_MS} ms from the last word): ${short}/${outcomes.length} (${pct(short, outcomes.length)})\n  waits (ms): ${waits}`,
  );
});

async function run(name: string): Promise<Outcome> {
  const pieces = manifest.files[name]!.speech;
  ConversationHarness.useFakeClock();
  const h = new ConversationHarness({ llm: { reply: 'Okay.', firstTokenMs: 300 } });
  try {
    h.start();
    const vad = new SileroVadStream(model, { sampleRate: 8000, ...vadOptionsFor(h.agent), minSpeechMs: h.agent.interruption.minSpeechMs });
    const finalized = new Set<number>();
    const transcribe = (speechEndMs: number) => {
      for (const [i, p] of pieces.entries()) {
        if (finalized.has(i) || p.endMs > speechEndMs + 50) continue;
        finalized.add(i);
        h.final(p.text, p.startMs, p.endMs);
      }
    };
    const pcm = mulawToPcm16(new Uint8Array(readFileSync(new URL(name, DIR))));
    for (let at = 0; at < pcm.length; at += FRAME) {
      for (const e of await vad.push(pcm.subarray(at, at + FRAME))) {
        if (e.kind === 'speech_start') h.speechStart(e.atMs);
        else {
          h.speechEnd(e.atMs);
          setTimeout(() => transcribe(e.atMs), FINAL_AFTER_MS);
        }
      }
      await h.advance(FRAME / 8);
    }
    await h.advance(2000);
    const last = pieces.at(-1)!;
    const turns = h.callerTurns;
    const confirmed = turns.map((t) => h.msOf(t.startedAt));
    return {
      name,
      pauses: pieces.length - 1,
      cutIns: confirmed.filter((at) => at < last.startMs).length,
      waitMs: confirmed.length > 0 ? confirmed.at(-1)! - last.endMs : null,
      text: turns.map((t) => t.text).join(' | '),
    };
  } finally {
    await h.close();
    vi.useRealTimers();
  }
}

describe('end of turn on espeak-ng utterances through the real VAD (default: adaptive)', () => {
  it.each(names)('%s: one turn, no cut-in inside a pause, answered after the short wait', async (name) => {
    const outcome = await run(name);
    outcomes.push(outcome);
    const pieces = manifest.files[name]!.speech;
    expect(outcome.cutIns, 'turns confirmed inside a pause the caller went on after').toBe(0);
    expect(outcome.text).toBe(pieces.map((p) => p.text).join(' '));
    expect(outcome.waitMs).not.toBeNull();
    expect(outcome.waitMs!).toBeLessThanOrEqual(SHORT_WAIT_MS);
  });
});

const pct = (n: number, of: number): string => `${Math.round((100 * n) / Math.max(1, of))}%`;
