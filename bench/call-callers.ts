// The simulated callers of the call benchmark, run in a child process of the server's (bench/call-bench.ts
// forks it), so that their work never shows up in the server process's CPU, memory or event-loop figures.
//
// Each caller is Twilio's side of one Media Stream (src/simulator/twilio-stream-client.ts): it streams a
// 20 ms frame every 20 ms on its own clock, like Twilio, speaking a fixture utterance, then silence while
// the echo agent plays it back, then a short pause and the next utterance, until the deadline. It checks
// every echoed frame against what it said (echo mode replays the caller's frames byte for byte), so frames
// lost or reordered on the way are counted, and times their arrival against real-time play-out.
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { TwilioStreamClient } from '../src/simulator/twilio-stream-client.js';
import type { CallerResult, FromCallers, ToCallers } from './call-protocol.js';

const FRAME_BYTES = 160;
const FRAME_MS = 20;
/** Silence after a reply has been sent in full (its mark arrived), before the next utterance. */
const PAUSE_FRAMES = 15;
/** An utterance with no reply this long after it ended counts as missed. */
const REPLY_TIMEOUT_MS = 10_000;
/** A reply that has started may take this long to finish before the caller gives up on it. */
const REPLY_MAX_MS = 30_000;
/** Gaps between echoed frames above this are counted (the pacer sends one every 20 ms). */
const GAP_MS = 60;
/** A reply may miss this many frames of the utterance's speech at either end (fixture timing is approximate). */
const SHORT_TOLERANCE_FRAMES = 5;
const ELD_RESOLUTION_MS = 10;
const FIXTURES = fileURLToPath(new URL('../test/fixtures/audio/', import.meta.url));

const send = (m: FromCallers): void => {
  process.send?.(m);
};

/** One thing a caller says: 20 ms frames, and which of them hold speech (from the fixture manifest). */
interface Utterance {
  name: string;
  frames: Uint8Array[];
  firstSpeech: number;
  lastSpeech: number;
}

interface Manifest {
  files: Record<string, { speech: Array<{ startMs: number; endMs: number }> }>;
}

function framesOf(audio: Uint8Array): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < audio.length; i += FRAME_BYTES) {
    const frame = new Uint8Array(FRAME_BYTES).fill(0xff);
    frame.set(audio.subarray(i, i + FRAME_BYTES));
    frames.push(frame);
  }
  return frames;
}

/**
 * two-utterances.ulaw cut in its 1.2 s pause into two clips (2.0 and 2.1 s of speech), one reply each; a
 * call cycles through them every 5-6 s, so a 30 s run gets several replies per call. hello.ulaw is left out
 * on purpose: its 360 ms pause after "calling." sits at the 400 ms end-of-speech threshold, and depending on
 * how the 32 ms VAD windows fall, Silero sometimes ends the turn there. The echo then starts while the
 * caller is still talking and is cleared (barge-in), which is VAD behaviour, not what this benchmark measures.
 */
function loadUtterances(): Utterance[] {
  const manifest = JSON.parse(readFileSync(`${FIXTURES}fixtures.json`, 'utf8')) as Manifest;
  const clip = (file: string, segment: number, fromMs: number, toMs: number): Utterance => {
    const audio = new Uint8Array(readFileSync(`${FIXTURES}${file}`));
    const speech = manifest.files[file]?.speech[segment];
    if (!speech) throw new Error(`${file} has no speech segment ${segment} in fixtures.json`);
    const from = (fromMs / FRAME_MS) * FRAME_BYTES;
    const to = Math.min(audio.length, (toMs / FRAME_MS) * FRAME_BYTES);
    return {
      name: `${file}#${segment + 1}`,
      frames: framesOf(audio.subarray(from, to)),
      firstSpeech: Math.floor((speech.startMs - fromMs) / FRAME_MS),
      lastSpeech: Math.ceil((speech.endMs - fromMs) / FRAME_MS) - 1,
    };
  };
  // The cut sits at a frame boundary inside the pause between the two sentences (2488 -> 3688 ms).
  return [clip('two-utterances.ulaw', 0, 0, 3080), clip('two-utterances.ulaw', 1, 3080, Infinity)];
}

const SILENCE_B64 = Buffer.from(new Uint8Array(FRAME_BYTES).fill(0xff)).toString('base64');

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

/** Counters shared by all callers. */
class Totals {
  framesSent = 0;
  utterances = 0;
  replies = 0;
  missedReplies = 0;
  shortReplies = 0;
  splitReplies = 0;
  clears = 0;
  framesReceived = 0;
  droppedFrames = 0;
  corruptFrames = 0;
  lateFrames = 0;
  gapsOver60Ms = 0;
  maxGapMs = 0;
  readonly turnLatencyMs: number[] = [];
  sendLagSum = 0;
  sendLagMax = 0;
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

class Caller {
  readonly client: TwilioStreamClient;
  closedEarly = false;
  private hangingUp = false;
  private state: State = 'speak';
  private clockStart = 0;
  private deadline = 0;
  private sent = 0;
  private stopped = false;
  private finished!: () => void;
  readonly done = new Promise<void>((resolve) => (this.finished = resolve));
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
    private readonly totals: Totals,
  ) {
    this.client = new TwilioStreamClient({ url, customParameters: { token } });
    this.utt = first;
  }

  async connect(): Promise<void> {
    await this.client.connect();
    void this.client.closed.then(() => {
      if (!this.hangingUp) this.closedEarly = true;
    });
  }

  /** Starts this caller's 20 ms clock at `at` (performance.now() time); it stops at `deadline`. */
  begin(at: number, deadline: number): void {
    this.clockStart = at;
    this.deadline = deadline;
    setTimeout(() => this.tick(), Math.max(0, at - performance.now()));
  }

  /** Stops the clock at the next tick (Ctrl-C), or at the first if it has not started yet. */
  stopSoon(): void {
    this.stopped = true;
  }

  /** Sends `stop` and waits (bounded) for the server to close the socket. */
  async hangUp(timeoutMs: number): Promise<void> {
    this.hangingUp = true;
    this.client.stop();
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([this.client.closed, new Promise((r) => (timeout = setTimeout(r, timeoutMs)))]);
    clearTimeout(timeout);
    // Also stops the simulated playback timer, whatever the socket's state.
    this.client.close();
  }

  private tick(): void {
    const now = performance.now();
    if (now >= this.deadline || this.closedEarly || this.stopped) return this.finish();
    const due = this.clockStart + this.sent * FRAME_MS;
    const lag = now - due;
    this.totals.sendLagSum += lag;
    this.totals.sendLagMax = Math.max(this.totals.sendLagMax, lag);

    this.readReceived();
    this.client.sendFrame(this.nextFrame());
    this.sent++;
    this.totals.framesSent++;
    setTimeout(() => this.tick(), Math.max(0, this.clockStart + this.sent * FRAME_MS - performance.now()));
  }

  private finish(): void {
    this.state = 'done';
    this.finished();
  }

  private nextFrame(): Uint8Array {
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
  private readReceived(): void {
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

const SILENCE = new Uint8Array(FRAME_BYTES).fill(0xff);

let hangUpRequested!: () => void;
const hangUp = new Promise<void>((resolve) => (hangUpRequested = resolve));
let callers: Caller[] = [];
let interrupted = false;

async function run(plan: Extract<ToCallers, { kind: 'plan' }>): Promise<CallerResult> {
  const utterances = loadUtterances();
  const index = frameIndex(utterances);
  const totals = new Totals();
  const n = plan.tokens.length;
  callers = plan.tokens.map((token, i) => new Caller(plan.url, token, i % utterances.length, utterances, index, totals));
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
    calls: n,
    closedEarly: callers.filter((c) => c.closedEarly).length,
    framesSent: totals.framesSent,
    utterances: totals.utterances,
    replies: totals.replies,
    missedReplies: totals.missedReplies,
    shortReplies: totals.shortReplies,
    splitReplies: totals.splitReplies,
    clears: totals.clears,
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
