// The simulated callers of the call benchmark, run in a child process of the server's (bench/call-bench.ts
// forks it), so that their work never shows up in the server process's CPU, memory or event-loop figures.
//
// Each caller is Twilio's side of one Media Stream (src/simulator/twilio-stream-client.ts): it streams a
// 20 ms frame every 20 ms on its own clock, like Twilio (bench/caller-common.ts). In echo mode (this file)
// it speaks a fixture utterance, then silence while the echo agent plays it back, then a short pause and the
// next utterance, until the deadline. It checks every echoed frame against what it said (echo mode replays
// the caller's frames byte for byte), so frames lost or reordered on the way are counted, and times their
// arrival against real-time play-out. In conversation mode the callers are bench/conversation-caller.ts.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { CallerResult, FromCallers, ToCallers } from './call-protocol.js';
import {
  ClockedCaller,
  FRAME_MS,
  GAP_MS,
  PAUSE_FRAMES,
  REPLY_MAX_MS,
  REPLY_TIMEOUT_MS,
  SILENCE,
  SILENCE_B64,
  Totals,
  loadUtterances,
  type Utterance,
} from './caller-common.js';
import { ConversationCaller } from './conversation-caller.js';

/** A reply may miss this many frames of the utterance's speech at either end (fixture timing is approximate). */
const SHORT_TOLERANCE_FRAMES = 5;
const ELD_RESOLUTION_MS = 10;

const send = (m: FromCallers): void => {
  process.send?.(m);
};

/** base64 frame -> where it occurs; null for frames that occur more than once (they cannot be placed). */
function frameIndex(utterances: Utterance[]): Map<string, { u: number; idx: number } | null> {
  const index = new Map<string, { u: number; idx: number } | null>();
  utterances.forEach((utt, u) =>
    utt.frames.forEach((frame, idx) => {
      const key = Buffer.from(frame).toString('base64');
      if (key === SILENCE_B64) return;
      index.set(key, index.has(key) ? null : { u, idx });
    }),
  );
  return index;
}

interface Reply {
  seq: number;
  utt: number;
  /** Started while the utterance was still being spoken. */
  split: boolean;
  firstAt: number;
  lastAt: number;
  count: number;
  lastMatch: { idx: number; q: number } | null;
  minIdx: number;
  maxIdx: number;
}

type State = 'speak' | 'await' | 'pause' | 'done';

class EchoCaller extends ClockedCaller {
  private state: State = 'speak';
  // The utterance being spoken or answered.
  private seq = 0;
  private utt: number;
  private k = 0;
  private speechEndSentAt = Number.NaN;
  private awaitSince = 0;
  private replyStartedFor = -1;
  private replyDoneFor = -1;
  private pauseLeft = 0;
  private readPos = 0;
  private reply: Reply | null = null;

  constructor(
    url: string,
    token: string,
    first: number,
    private readonly utterances: Utterance[],
    private readonly index: Map<string, { u: number; idx: number } | null>,
    totals: Totals,
  ) {
    super(url, token, totals);
    this.utt = first;
  }

  protected override onFinish(): void {
    this.state = 'done';
  }

  protected nextFrame(): Uint8Array {
    switch (this.state) {
      case 'speak': {
        const utt = this.utterances[this.utt]!;
        const frame = utt.frames[this.k]!;
        if (this.k === utt.lastSpeech) this.speechEndSentAt = this.client.now();
        this.k++;
        if (this.k === utt.frames.length) {
          this.totals.utterances++;
          this.state = 'await';
          this.awaitSince = this.client.now();
        }
        return frame;
      }
      case 'await': {
        const waited = this.client.now() - this.awaitSince;
        if (this.replyDoneFor === this.seq) {
          this.state = 'pause';
          this.pauseLeft = PAUSE_FRAMES;
        } else if (this.replyStartedFor !== this.seq && waited > REPLY_TIMEOUT_MS) {
          this.totals.missedReplies++;
          this.state = 'pause';
          this.pauseLeft = PAUSE_FRAMES;
        } else if (waited > REPLY_MAX_MS) {
          this.state = 'pause';
          this.pauseLeft = PAUSE_FRAMES;
        }
        return SILENCE;
      }
      case 'pause':
        if (--this.pauseLeft <= 0) {
          this.seq++;
          this.utt = (this.utt + 1) % this.utterances.length;
          this.k = 0;
          this.speechEndSentAt = Number.NaN;
          this.state = 'speak';
        }
        return SILENCE;
      case 'done':
        return SILENCE;
      default: {
        const never: never = this.state;
        throw new Error(`unknown caller state ${String(never)}`);
      }
    }
  }

  // Looks at what the server sent since the last tick; arrival times were taken by the client on arrival.
  protected readReceived(): void {
    const received = this.client.received;
    for (; this.readPos < received.length; this.readPos++) {
      const { at, msg } = received[this.readPos]!;
      switch (msg.event) {
        case 'media':
          this.onEchoFrame(at, msg.media.payload);
          break;
        case 'mark':
          this.onReplyEnd();
          break;
        case 'clear':
          this.totals.clears++;
          this.reply = null;
          break;
      }
    }
  }

  private onEchoFrame(at: number, payload: string): void {
    const t = this.totals;
    t.framesReceived++;
    let reply = this.reply;
    if (!reply) {
      // VAD closes an utterance only after 400 ms of silence, so a reply that starts before its last speech
      // frame was even sent answers a piece of it: VAD split the utterance at a pause.
      const split = this.state === 'speak' && this.k <= this.utterances[this.utt]!.lastSpeech;
      reply = { seq: this.seq, utt: this.utt, split, firstAt: at, lastAt: at, count: 0, lastMatch: null, minIdx: Infinity, maxIdx: -Infinity };
      this.reply = reply;
      if (split) t.splitReplies++;
      else if (this.replyStartedFor !== this.seq && Number.isFinite(this.speechEndSentAt)) t.turnLatencyMs.push(at - this.speechEndSentAt);
      if (!split) this.replyStartedFor = this.seq;
    } else {
      const gap = at - reply.lastAt;
      if (gap > GAP_MS) t.gapsOver60Ms++;
      t.maxGapMs = Math.max(t.maxGapMs, gap);
    }
    // Playback starts with the first frame; frame q plays at firstAt + 20 q and must be there by then.
    if (at > reply.firstAt + reply.count * FRAME_MS) t.lateFrames++;

    const q = reply.count;
    const place = this.index.get(payload);
    if (place === undefined) {
      if (payload !== SILENCE_B64) t.corruptFrames++;
    } else if (place !== null) {
      if (place.u !== reply.utt) {
        t.corruptFrames++;
      } else {
        const last = reply.lastMatch;
        if (last) {
          // Between two placed frames, the reply must hold exactly the frames the caller said between them.
          const missing = place.idx - last.idx - (q - last.q);
          if (missing > 0) t.droppedFrames += missing;
          else if (missing < 0) t.corruptFrames++;
        }
        reply.lastMatch = { idx: place.idx, q };
        reply.minIdx = Math.min(reply.minIdx, place.idx);
        reply.maxIdx = Math.max(reply.maxIdx, place.idx);
      }
    }
    reply.count++;
    reply.lastAt = at;
  }

  private onReplyEnd(): void {
    const reply = this.reply;
    this.reply = null;
    if (!reply) return;
    const t = this.totals;
    t.replies++;
    const utt = this.utterances[reply.utt]!;
    if (!reply.split) {
      const short = !(reply.minIdx <= utt.firstSpeech + SHORT_TOLERANCE_FRAMES && reply.maxIdx >= utt.lastSpeech - SHORT_TOLERANCE_FRAMES);
      if (short) t.shortReplies++;
      if (reply.seq === this.seq) this.replyDoneFor = reply.seq;
    }
  }
}

let hangUpRequested!: () => void;
const hangUp = new Promise<void>((resolve) => (hangUpRequested = resolve));
let callers: Array<EchoCaller | ConversationCaller> = [];
let interrupted = false;

async function run(plan: Extract<ToCallers, { kind: 'plan' }>): Promise<CallerResult> {
  const utterances = loadUtterances();
  const index = plan.mode === 'echo' ? frameIndex(utterances) : null;
  const totals = new Totals();
  const n = plan.tokens.length;
  callers = plan.tokens.map((token, i) =>
    index
      ? new EchoCaller(plan.url, token, i % utterances.length, utterances, index, totals)
      : new ConversationCaller(plan.url, token, i % utterances.length, utterances, totals, plan.bargeIn),
  );
  if (interrupted) for (const c of callers) c.stopSoon();

  const connectStarted = performance.now();
  await Promise.all(callers.map((c) => c.connect()));
  send({ kind: 'connected', calls: n, connectMs: performance.now() - connectStarted });

  // Caller i starts its clock at t0 + i/n of the stagger window, so the calls' 20 ms phases are spread out.
  const t0 = performance.now() + 20;
  const measureStart = t0 + plan.staggerMs;
  const deadline = measureStart + plan.durationS * 1000;
  callers.forEach((c, i) => c.begin(t0 + (i * plan.staggerMs) / n, deadline));

  const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
  let cpuStart = process.cpuUsage();
  let wallStart = performance.now();
  const measuring = setTimeout(() => {
    eld.enable();
    cpuStart = process.cpuUsage();
    wallStart = performance.now();
    // The callers' wait is compared with the server's, which counts from here.
    totals.turnLatencyMs.length = 0;
    send({ kind: 'measure-start' });
  }, measureStart - performance.now());
  const progress = setInterval(() => {
    const elapsedS = Math.max(0, (performance.now() - measureStart) / 1000);
    send({ kind: 'progress', elapsedS: Math.min(elapsedS, plan.durationS), totalS: plan.durationS, utterances: totals.utterances, replies: totals.replies });
  }, 1000);

  await Promise.all(callers.map((c) => c.done));
  clearTimeout(measuring);
  clearInterval(progress);
  eld.disable();
  const cpu = process.cpuUsage(cpuStart);
  const wallMs = performance.now() - wallStart;
  send({ kind: 'quiet', framesSent: totals.framesSent });

  await hangUp;
  await Promise.all(callers.map((c) => c.hangUp(5000)));

  const eldP99 = eld.count > 0 ? Math.max(0, eld.percentile(99) / 1e6 - ELD_RESOLUTION_MS) : Number.NaN;
  return {
    mode: plan.mode,
    calls: n,
    closedEarly: callers.filter((c) => c.closedEarly).length,
    framesSent: totals.framesSent,
    utterances: totals.utterances,
    replies: totals.replies,
    missedReplies: totals.missedReplies,
    shortReplies: totals.shortReplies,
    splitReplies: totals.splitReplies,
    clears: totals.clears,
    bargeInsAttempted: totals.bargeInsAttempted,
    bargeInsCleared: totals.bargeInsCleared,
    framesReceived: totals.framesReceived,
    droppedFrames: totals.droppedFrames,
    corruptFrames: totals.corruptFrames,
    lateFrames: totals.lateFrames,
    gapsOver60Ms: totals.gapsOver60Ms,
    maxGapMs: totals.maxGapMs,
    turnLatencyMs: totals.turnLatencyMs,
    sendLagMs: { mean: totals.framesSent > 0 ? totals.sendLagSum / totals.framesSent : 0, max: totals.sendLagMax },
    eventLoopDelayP99Ms: eldP99,
    cpuPct: wallMs > 0 ? ((cpu.user + cpu.system) / 1000 / wallMs) * 100 : 0,
    interrupted,
  };
}

process.on('message', (m: ToCallers) => {
  switch (m.kind) {
    case 'plan':
      run(m).then(
        (result) => process.send?.({ kind: 'done', result } satisfies FromCallers, () => process.disconnect()),
        (err: unknown) => {
          process.send?.({ kind: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies FromCallers, () => process.exit(1));
        },
      );
      break;
    case 'hang-up':
      hangUpRequested();
      break;
    case 'abort':
      interrupted = true;
      for (const c of callers) c.stopSoon();
      break;
    default: {
      const never: never = m;
      throw new Error(`unexpected message ${JSON.stringify(never)}`);
    }
  }
});
// The server process is gone (crashed or killed): nothing left to measure, do not linger.
process.on('disconnect', () => process.exit(0));
// Ctrl-C in a terminal reaches the whole process group: the server process turns it into `abort`, so the
// callers finish their report instead of dying mid-run.
process.on('SIGINT', () => {});
