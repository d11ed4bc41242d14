import { describe, expect, it } from 'vitest';
import { MULAW_SILENCE } from '../media/audio/mulaw.js';
import type { SayStep } from './script.js';
import { turnReport, type Turn } from './simulation-report.js';

const FRAME_MS = 20;

/** A turn's accounting: `sentAt` frames sent 20 ms apart from 0, a reply whose first frame came at `replyAt`. */
function turn(say: SayStep | null, frames: number, replyAt: number | null, index = 1): Turn {
  return {
    index,
    say,
    keys: null,
    keysAt: null,
    bargeInto: null,
    sentAt: Array.from({ length: frames }, (_, i) => i * FRAME_MS),
    audioEnded: true,
    firstFrameAt: replyAt,
    lastFrameAt: replyAt ?? 0,
    lastActivityAt: replyAt ?? 0,
    framesReceived: replyAt === null ? 0 : 10,
    framesPlayed: replyAt === null ? 0 : 10,
    framesDropped: 0,
    marksSent: 0,
    marksEchoed: 0,
    clearedAt: null,
    framesAtClear: 0,
    waitOutcome: 'replied',
  };
}

/** A say step whose file has speech from 100 to 1000 ms. */
const say: SayStep = {
  kind: 'say',
  file: '/x/said.wav',
  label: 'said.wav',
  audio: { mulaw: new Uint8Array(12_000).fill(MULAW_SILENCE), durationMs: 1500 } as SayStep['audio'],
  speech: { startMs: 100, endMs: 1000, utterances: [{ startMs: 100, endMs: 1000 }] },
  bargeInAfterMs: null,
  waitForReply: true,
};

describe('the simulator\'s turn report', () => {
  it('times the caller\'s wait from the sending of its last voiced frame to the reply\'s first frame', () => {
    // The frame holding audio up to 1000 ms is frame 49, sent at 980 ms.
    const t = turn(say, 75, 1700);
    expect(turnReport(t, [t], null).reply!.callerWaitMs).toBe(720);
  });

  it('has no caller wait for a greeting: the agent spoke first, nobody waited for an answer', () => {
    const t = turn(null, 0, 300);
    const report = turnReport(t, [t], null);
    expect(report.reply!.latencyMs).toBe(300);
    expect(report.reply!.callerWaitMs).toBeNull();
  });

  it('has no caller wait for a file without speech in it', () => {
    const t = turn({ ...say, speech: null }, 75, 1700);
    expect(turnReport(t, [t], null).reply!.callerWaitMs).toBeNull();
  });
});
