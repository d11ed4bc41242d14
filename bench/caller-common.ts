// What the call benchmark's two kinds of simulated caller (echo: bench/call-callers.ts, conversation:
// bench/conversation-caller.ts) share: the fixture utterances, the counters, and the 20 ms clock each caller
// keeps on its own, as Twilio does.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { isVoiced } from '../src/media/audio/speech-level.js';
import { TwilioStreamClient, type StreamClientEvent } from '../src/simulator/twilio-stream-client.js';

/** Bytes of one 20 ms mu-law frame at 8 kHz. */
export const FRAME_BYTES = 160;
/** Twilio's frame interval. */
export const FRAME_MS = 20;
/** One frame of mu-law silence. */
export const SILENCE = new Uint8Array(FRAME_BYTES).fill(0xff);
/** The same frame as Twilio's base64 payload. */
export const SILENCE_B64 = Buffer.from(SILENCE).toString('base64');
/** Silence after a reply has been heard in full, before the next utterance. */
export const PAUSE_FRAMES = 15;
/** An utterance with no reply this long after it ended counts as missed. */
export const REPLY_TIMEOUT_MS = 10_000;
/** A reply that has started may take this long to finish before the caller gives up on it. */
export const REPLY_MAX_MS = 30_000;
/** Gaps between received frames above this are counted (the pacer sends one every 20 ms). */
export const GAP_MS = 60;

const FIXTURES = fileURLToPath(new URL('../test/fixtures/audio/', import.meta.url));

/**
 * One thing a caller says: 20 ms frames, and the first and last of them with voice by the level rule the
 * server and the simulator use (`isVoiced`): the caller's wait is measured from the last one sent.
 */
export interface Utterance {
  name: string;
  /** What the fixture says (the fake STT's transcript of it). */
  text: string;
  frames: Uint8Array[];
  firstSpeech: number;
  lastSpeech: number;
}

interface Manifest {
  files: Record<string, { speech: Array<{ startMs: number; endMs: number; text: string }> }>;
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
 * two-utterances.ulaw cut in its 1.2 s pause into two clips (2.0 and 2.1 s of speech in 3.1 and 3.5 s of
 * audio). hello.ulaw is left out on purpose: its 360 ms pause after "calling." sits at the 400 ms
 * end-of-speech threshold, and depending on how the 32 ms VAD windows fall, Silero sometimes ends the turn
 * there, which is VAD behaviour, not what this benchmark measures.
 */
export function loadUtterances(): Utterance[] {
  const manifest = JSON.parse(readFileSync(`${FIXTURES}fixtures.json`, 'utf8')) as Manifest;
  const clip = (file: string, segment: number, fromMs: number, toMs: number): Utterance => {
    const audio = new Uint8Array(readFileSync(`${FIXTURES}${file}`));
    const speech = manifest.files[file]?.speech[segment];
    if (!speech) throw new Error(`${file} has no speech segment ${segment} in fixtures.json`);
    const from = (fromMs / FRAME_MS) * FRAME_BYTES;
    const to = Math.min(audio.length, (toMs / FRAME_MS) * FRAME_BYTES);
    const frames = framesOf(audio.subarray(from, to));
    const voiced = frames.flatMap((f, i) => (isVoiced(f) ? [i] : []));
    if (voiced.length === 0) throw new Error(`${file} has no voiced frame between ${fromMs} and ${toMs} ms`);
    return { name: `${file}#${segment + 1}`, text: speech.text, frames, firstSpeech: voiced[0]!, lastSpeech: voiced.at(-1)! };
  };
  // The cut sits at a frame boundary inside the pause between the two sentences (2488 -> 3688 ms).
  return [clip('two-utterances.ulaw', 0, 0, 3080), clip('two-utterances.ulaw', 1, 3080, Infinity)];
}

/** Counters shared by all callers of a run. */
export class Totals {
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
  bargeInsAttempted = 0;
  bargeInsCleared = 0;
  readonly turnLatencyMs: number[] = [];
  sendLagSum = 0;
  sendLagMax = 0;
}

/**
 * One caller: Twilio's side of one Media Stream (src/simulator/twilio-stream-client.ts) sending a 20 ms frame
 * every 20 ms on its own clock from `begin` to the deadline. Subclasses say what each frame is and read what
 * the server sent, once per tick.
 */
export abstract class ClockedCaller {
  readonly client: TwilioStreamClient;
  closedEarly = false;
  private hangingUp = false;
  private clockStart = 0;
  private deadline = 0;
  private sent = 0;
  private stopped = false;
  private finished!: () => void;
  /** Resolves when the caller has stopped sending (deadline, abort, or its socket closed). */
  readonly done = new Promise<void>((resolve) => (this.finished = resolve));

  constructor(
    url: string,
    token: string,
    protected readonly totals: Totals,
  ) {
    this.client = new TwilioStreamClient({ url, customParameters: { token }, onEvent: (e) => this.onStreamEvent(e) });
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

  /** The next frame to send; called once per tick, after `readReceived`. */
  protected abstract nextFrame(): Uint8Array;

  /** Looks at what the server sent since the last tick (arrival times were taken by the client on arrival). */
  protected abstract readReceived(): void;

  /** What the client saw, as it happened (playback reaching a mark, for instance); default: nothing. */
  protected onStreamEvent(_event: StreamClientEvent): void {}

  /** Called once when the clock stops. */
  protected onFinish(): void {}

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
    this.onFinish();
    this.finished();
  }
}
