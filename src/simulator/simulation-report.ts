// The simulator's options, its accounting of turns, and the report made from it: what the caller said, what the agent
// answered, when, and how much of it played.
import type { Script, SayStep } from './script.js';

const FRAME_MS = 20;

/** The stream could not be opened at all (no call took place). */
export class SimulationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimulationError';
  }
}

/** What to simulate and how patient to be. */
export interface SimulationOptions {
  /** The Media Streams WebSocket URL (`ws://host/twilio/media`). */
  streamUrl: string;
  /** The single-use stream token, sent as `start.customParameters.token` like our TwiML makes Twilio do. */
  token: string;
  script: Script;
  onProgress?: (event: SimulationProgress) => void;
  /** How long to wait for a reply to start once the caller stopped talking. Default 10 s. */
  replyTimeoutMs?: number;
  /** Quiet time after the last played frame and echoed mark before a reply counts as finished. Default 600 ms. */
  replySettleMs?: number;
  /** Longest reply to wait for. Default 2 minutes. */
  maxReplyMs?: number;
  /** Gap between DTMF keys. Default 100 ms. */
  dtmfIntervalMs?: number;
  /** Hangs up (sends `stop`) when aborted; the report covers what happened so far. */
  signal?: AbortSignal;
}

/**
 * One turn of the conversation, numbered from 1: something the caller said and the agent's reply, or the
 * agent speaking on its own (a greeting, an answer to keys). Times are ms since the stream opened.
 */
export interface TurnReport {
  turn: number;
  /** The file the caller said; null when the agent spoke without being spoken to. */
  said: string | null;
  /** For a turn the agent started: the DTMF keys pressed just before it, if any. */
  keys: string | null;
  caller: {
    startedAtMs: number;
    endedAtMs: number;
    /** The file's length, and how much of it was sent (less when the call ended first). */
    fileMs: number;
    audioMs: number;
    /** When the frames holding the first and last speech in the file were sent (null: silent file, or not reached). */
    speechStartedAtMs: number | null;
    speechEndedAtMs: number | null;
  } | null;
  /** This turn talked over the reply of `intoTurn`, starting `startedAfterMs` after that reply began arriving. */
  bargeIn: { intoTurn: number; requestedAfterMs: number; startedAfterMs: number | null } | null;
  reply: {
    firstFrameAtMs: number;
    /**
     * First reply frame's arrival minus the end of the caller's utterance it answers (the last one in the
     * file that ended before it; else the end of the file's audio). For a turn the agent started: minus
     * the last key pressed, or the stream's start for a greeting; null for speech nothing prompted.
     */
    latencyMs: number | null;
    /**
     * What the caller waited: the first reply frame's arrival minus the sending of the caller's last voiced
     * frame before it (the level rule of `isVoiced`, as the server measures it). Null for a turn the agent
     * started, or a file with no voice in it.
     */
    callerWaitMs: number | null;
    lastFrameAtMs: number;
    /** Audio the agent sent for this turn, and how much of it played before any `clear`. */
    receivedMs: number;
    playedMs: number;
    marksSent: number;
    marksEchoed: number;
    /** The agent's first `clear` during this reply; `afterCallerSpeechMs` is from the start of the barge-in's speech. */
    cleared: { atMs: number; afterCallerSpeechMs: number | null } | null;
  } | null;
  /** How the turn ended: `replied`, `cleared` (the reply was cut off and not resumed), `no_reply`, `timed_out` (reply longer than the limit), `not_waited`, `call_ended`. */
  outcome: 'replied' | 'cleared' | 'no_reply' | 'timed_out' | 'not_waited' | 'call_ended';
}

/** Everything a simulated call did. */
export interface SimulationReport {
  streamSid: string;
  callSid: string;
  startedAt: string;
  durationMs: number;
  /** `caller`: the script finished and hung up; `server`: the server closed the stream first; `interrupted`: aborted. */
  ended: { by: 'caller' | 'server' | 'interrupted'; code: number; reason: string; abnormal: boolean };
  turns: TurnReport[];
  totals: {
    framesSent: number;
    framesReceived: number;
    framesPlayed: number;
    framesDropped: number;
    clears: number;
    marksReceived: number;
    marksEchoed: number;
    dtmfSent: number;
  };
  /** The agent's audio as the caller heard it (cleared audio excluded), 8 kHz mu-law. */
  agentAudio: Uint8Array;
}

/** Progress as it happens, for a live display. */
export type SimulationProgress =
  | { type: 'connected'; streamSid: string }
  | { type: 'say'; turn: number; label: string; durationMs: number; waitForReply: boolean; bargeIn: { intoTurn: number; afterMs: number } | null }
  | { type: 'reply_started'; turn: number; latencyMs: number | null }
  | { type: 'cleared'; turn: number; afterCallerSpeechMs: number | null; playedMs: number }
  | { type: 'turn_done'; report: TurnReport }
  | { type: 'pause'; ms: number }
  | { type: 'dtmf'; digits: string }
  | { type: 'wait'; turn: number }
  | { type: 'no_barge_in_target'; turn: number }
  | { type: 'ended'; ended: SimulationReport['ended'] };

/** Live accounting of one turn. */
export interface Turn {
  index: number;
  say: SayStep | null;
  /** For a turn the agent started: the keys pressed since the previous turn, and when the last one was. */
  keys: string | null;
  keysAt: number | null;
  bargeInto: Turn | null;
  /** When each frame of the caller's audio was sent. */
  sentAt: number[];
  audioEnded: boolean;
  firstFrameAt: number | null;
  lastFrameAt: number;
  lastActivityAt: number;
  framesReceived: number;
  framesPlayed: number;
  framesDropped: number;
  marksSent: number;
  marksEchoed: number;
  clearedAt: number | null;
  /** Frames received when the last clear arrived: more after it means the agent spoke again. */
  framesAtClear: number;
  waitOutcome: TurnReport['outcome'] | null;
}

/** Frames and marks of the turn still on the client's playback queue. */
export const pending = (t: Turn) => t.framesReceived - t.framesPlayed - t.framesDropped + t.marksSent - t.marksEchoed;

/** When the frame holding audio up to `ms` into the turn's file was sent (undefined: not yet). */
export function sentAtMs(t: Turn, ms: number): number | undefined {
  return t.sentAt[Math.max(0, Math.ceil(ms / FRAME_MS) - 1)];
}

/**
 * When the caller finished talking, for latency: the end of the last utterance in the file sent before
 * the reply began (a file with two sentences may be answered after the first), else the end of its
 * speech, else its last frame. For a turn the agent started: the last key pressed before it, or the
 * stream's start for a greeting; null when nothing prompted it.
 */
export function replyReference(t: Turn, turns: readonly Turn[]): number | null {
  if (!t.say) return t.keysAt ?? (turns.some((o) => o.index < t.index) ? null : 0);
  const span = t.say.speech;
  if (!span || t.sentAt.length === 0) return t.sentAt.at(-1) ?? 0;
  const first = t.firstFrameAt;
  const answered = span.utterances.map((u) => sentAtMs(t, u.endMs)).filter((at): at is number => at !== undefined && first !== null && at <= first);
  return answered.at(-1) ?? sentAtMs(t, span.endMs) ?? t.sentAt.at(-1)!;
}

function speechStartAt(t: Turn): number | null {
  const span = t.say?.speech;
  if (!span) return null;
  return t.sentAt[Math.floor(span.startMs / FRAME_MS)] ?? null;
}

/** Ms from the start of the turn's speech to `at` (null: no speech in its file). */
export function sinceSpeechStart(t: Turn, at: number): number | null {
  const start = speechStartAt(t);
  return start === null ? null : Math.round(at - start);
}

/** The report of one turn, from its accounting; `turns` are all the call's turns, `ended` how the call ended. */
export function turnReport(t: Turn, turns: readonly Turn[], ended: SimulationReport['ended'] | null): TurnReport {
  const round = (n: number) => Math.round(n);
  const span = t.say?.speech ?? null;
  const caller: TurnReport['caller'] =
    t.say && t.sentAt.length > 0
      ? {
          startedAtMs: round(t.sentAt[0]!),
          endedAtMs: round(t.sentAt.at(-1)!),
          fileMs: round(t.say.audio.durationMs),
          audioMs: Math.min(round(t.say.audio.durationMs), t.sentAt.length * FRAME_MS),
          speechStartedAtMs: span ? (speechStartAt(t) === null ? null : round(speechStartAt(t)!)) : null,
          speechEndedAtMs: span ? (sentAtMs(t, span.endMs) === undefined ? null : round(sentAtMs(t, span.endMs)!)) : null,
        }
      : null;
  const clearedBy = turns.find((o) => o.bargeInto === t) ?? null;
  // For speech, the reply's reference is the caller's last voiced frame sent before the reply began.
  const reference = replyReference(t, turns);
  const voicedReference = span !== null && t.firstFrameAt !== null && reference !== null && reference <= t.firstFrameAt ? reference : null;
  const reply: TurnReport['reply'] =
    t.firstFrameAt === null
      ? null
      : {
          firstFrameAtMs: round(t.firstFrameAt),
          latencyMs: reference === null ? null : round(t.firstFrameAt - reference),
          callerWaitMs: voicedReference === null ? null : round(t.firstFrameAt - voicedReference),
          lastFrameAtMs: round(t.lastFrameAt),
          receivedMs: t.framesReceived * FRAME_MS,
          playedMs: t.framesPlayed * FRAME_MS,
          marksSent: t.marksSent,
          marksEchoed: t.marksEchoed,
          cleared: t.clearedAt === null ? null : { atMs: round(t.clearedAt), afterCallerSpeechMs: clearedBy ? sinceSpeechStart(clearedBy, t.clearedAt) : null },
        };
  const endedByClear = t.clearedAt !== null && t.framesReceived === t.framesAtClear;
  const outcome: TurnReport['outcome'] = endedByClear ? 'cleared' : (t.waitOutcome ?? (ended && ended.by !== 'caller' ? 'call_ended' : reply ? 'not_waited' : 'no_reply'));
  return {
    turn: t.index,
    said: t.say?.label ?? null,
    keys: t.keys,
    caller,
    bargeIn:
      t.say?.bargeInAfterMs != null
        ? { intoTurn: t.bargeInto?.index ?? -1, requestedAfterMs: t.say.bargeInAfterMs, startedAfterMs: t.bargeInto?.firstFrameAt != null && t.sentAt.length > 0 ? round(t.sentAt[0]! - t.bargeInto.firstFrameAt) : null }
        : null,
    reply,
    outcome,
  };
}

