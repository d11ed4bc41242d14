// A whole simulated call: Twilio's side of the stream (TwilioStreamClient) driven by a script, with the
// line kept alive the way a phone keeps it alive, and every agent frame, mark and clear accounted to the
// caller turn it answers.

import type { SayStep } from './script.js';
import { TwilioStreamClient, type StreamClientEvent } from './twilio-stream-client.js';
import { pending, replyReference, SimulationError, sinceSpeechStart, turnReport, type SimulationOptions, type SimulationProgress, type SimulationReport, type Turn } from './simulation-report.js';

export { SimulationError, type SimulationOptions, type SimulationProgress, type SimulationReport, type TurnReport } from './simulation-report.js';

const FRAME_BYTES = 160;
const FRAME_MS = 20;
const SILENCE = new Uint8Array(FRAME_BYTES).fill(0xff);
const POLL_MS = 10;

/** Caller audio queued on the line, and who is waiting for it to finish. */
interface Utterance {
  audio: Uint8Array;
  offset: number;
  turn: Turn;
  done: () => void;
}

/**
 * Runs one call: connects as Twilio, plays the script in real time, and returns what happened. The line
 * never goes quiet: between steps it carries silence frames every 20 ms, as a real call does.
 */
export async function runSimulation(opts: SimulationOptions): Promise<SimulationReport> {
  return new Simulation(opts).run();
}

class Simulation {
  private readonly client: TwilioStreamClient;
  private readonly progress: (e: SimulationProgress) => void;
  private readonly replyTimeoutMs: number;
  private readonly settleMs: number;
  private readonly maxReplyMs: number;
  private readonly dtmfIntervalMs: number;
  private readonly turns: Turn[] = [];
  // The turn agent output is counted to; a say that starts while another reply is still playing waits in
  // `nextTurn` until that reply is cleared or has finished playing.
  private replyTurn: Turn | null = null;
  private nextTurn: Turn | null = null;
  // Mirrors of the client's playback queue: whose frames are waiting to play, whose marks to be echoed.
  private unplayed: Turn[] = [];
  private unechoed: Turn[] = [];
  private readonly queue: Utterance[] = [];
  // DTMF keys pressed since the last turn began: an agent turn that follows them is their answer.
  private keys = '';
  private lastKeyAt = 0;
  private lineTimer: NodeJS.Timeout | null = null;
  private nextFrameDue = 0;
  private ended: SimulationReport['ended'] | null = null;
  private hangingUp = false;
  // Everything waiting on a timer or on the line; all released at once when the call ends.
  private readonly waiters = new Set<() => void>();
  private readonly totals = { framesSent: 0, framesReceived: 0, framesPlayed: 0, framesDropped: 0, clears: 0, marksReceived: 0, marksEchoed: 0, dtmfSent: 0 };

  constructor(private readonly opts: SimulationOptions) {
    this.client = new TwilioStreamClient({ url: opts.streamUrl, customParameters: { token: opts.token }, onEvent: (e) => this.onStreamEvent(e) });
    this.progress = opts.onProgress ?? (() => {});
    this.replyTimeoutMs = opts.replyTimeoutMs ?? 10_000;
    this.settleMs = opts.replySettleMs ?? 600;
    this.maxReplyMs = opts.maxReplyMs ?? 120_000;
    this.dtmfIntervalMs = opts.dtmfIntervalMs ?? 100;
  }

  async run(): Promise<SimulationReport> {
    const startedAt = new Date();
    try {
      await this.client.connect();
    } catch (err) {
      throw new SimulationError(`could not open the media stream at ${this.opts.streamUrl}: ${(err as Error).message}`);
    }
    void this.client.closed.then(({ code, reason }) => {
      if (!this.hangingUp) this.finish({ by: 'server', code, reason, abnormal: true });
    });
    const onAbort = () => this.finish({ by: 'interrupted', code: 0, reason: 'interrupted', abnormal: true });
    this.opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (this.opts.signal?.aborted) onAbort();
    this.progress({ type: 'connected', streamSid: this.client.streamSid });
    this.startLine();

    try {
      for (const [i, step] of this.opts.script.steps.entries()) {
        if (this.ended) break;
        switch (step.kind) {
          case 'say':
            await this.say(step);
            break;
          case 'pause':
            this.progress({ type: 'pause', ms: step.ms });
            await this.sleep(step.ms);
            break;
          case 'dtmf':
            this.progress({ type: 'dtmf', digits: step.digits });
            for (const digit of step.digits) {
              if (this.ended) break;
              this.client.dtmf(digit);
              this.totals.dtmfSent++;
              this.keys += digit;
              this.lastKeyAt = this.client.now();
              await this.sleep(this.dtmfIntervalMs);
            }
            break;
          case 'wait': {
            // The reply nobody has waited for yet, else whatever the agent says next.
            const current = this.nextTurn ?? this.replyTurn;
            const turn = current && current.waitOutcome === null ? current : this.agentTurn();
            this.progress({ type: 'wait', turn: turn.index });
            await this.waitForReply(turn, this.client.now());
            break;
          }
          default: {
            const never: never = step;
            throw new Error(`unknown step ${JSON.stringify(never)} at ${i}`);
          }
        }
      }
    } catch (err) {
      // Our own bug, not the call's: leave nothing running behind the exception.
      this.finish({ by: 'interrupted', code: 0, reason: (err as Error).message, abnormal: true });
      this.client.close();
      throw err;
    } finally {
      this.opts.signal?.removeEventListener('abort', onAbort);
    }
    await this.hangUp();

    const ended = this.ended ?? { by: 'caller', code: 0, reason: '', abnormal: false };
    this.progress({ type: 'ended', ended });
    return {
      streamSid: this.client.streamSid,
      callSid: this.client.callSid,
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(this.client.now()),
      ended,
      turns: this.turns.map((t) => turnReport(t, this.turns, this.ended)),
      totals: { ...this.totals },
      agentAudio: Buffer.concat(this.client.played),
    };
  }

  // --- the script's steps ---

  private async say(step: SayStep): Promise<void> {
    let bargeInto: Turn | null = null;
    if (step.bargeInAfterMs !== null) {
      // Talk over the reply now arriving (or about to): wait for its first frame, then the offset.
      const target = this.nextTurn ?? this.replyTurn ?? this.agentTurn();
      const since = this.client.now();
      await this.until(() => target.firstFrameAt !== null || this.client.now() - since > this.replyTimeoutMs);
      if (target.firstFrameAt === null) this.progress({ type: 'no_barge_in_target', turn: target.index });
      else {
        bargeInto = target;
        const due = target.firstFrameAt + step.bargeInAfterMs;
        await this.until(() => this.client.now() >= due - FRAME_MS / 2);
      }
      if (this.ended) return;
    }
    const turn = this.newTurn(step, bargeInto);
    this.progress({ type: 'say', turn: turn.index, label: step.label, durationMs: step.audio.durationMs, waitForReply: step.waitForReply, bargeIn: bargeInto ? { intoTurn: bargeInto.index, afterMs: step.bargeInAfterMs! } : null });
    await this.speak(turn, step.audio.mulaw);
    if (step.waitForReply) await this.waitForReply(turn, this.client.now());
  }

  private newTurn(say: SayStep | null, bargeInto: Turn | null): Turn {
    const turn: Turn = {
      index: this.turns.length + 1,
      say,
      keys: say || !this.keys ? null : this.keys,
      keysAt: say || !this.keys ? null : this.lastKeyAt,
      bargeInto,
      sentAt: [],
      audioEnded: say === null,
      firstFrameAt: null,
      lastFrameAt: 0,
      lastActivityAt: 0,
      framesReceived: 0,
      framesPlayed: 0,
      framesDropped: 0,
      marksSent: 0,
      marksEchoed: 0,
      clearedAt: null,
      framesAtClear: 0,
      waitOutcome: null,
    };
    this.keys = '';
    this.turns.push(turn);
    return turn;
  }

  /** A turn the agent starts (a greeting, an answer to keys); it owns the agent's output from now on. */
  private agentTurn(): Turn {
    const turn = this.newTurn(null, null);
    if (!this.replyTurn || pending(this.replyTurn) === 0) this.replyTurn = turn;
    else this.nextTurn = turn;
    return turn;
  }

  /** The turn the agent's next frame or mark belongs to: a reply already waited out is over, so new audio starts a turn of its own. */
  private outputTurn(): Turn {
    if (this.replyTurn && this.replyTurn.waitOutcome !== 'replied') return this.replyTurn;
    return this.agentTurn();
  }

  private async waitForReply(turn: Turn, since: number): Promise<void> {
    await this.until(() => {
      const now = this.client.now();
      if (turn.firstFrameAt === null) {
        if (now - since <= this.replyTimeoutMs) return false;
        turn.waitOutcome = 'no_reply';
        return true;
      }
      if (pending(turn) === 0 && now - turn.lastActivityAt >= this.settleMs) {
        turn.waitOutcome = 'replied';
        return true;
      }
      if (now - turn.firstFrameAt > this.maxReplyMs) {
        turn.waitOutcome = 'timed_out';
        return true;
      }
      return false;
    });
    if (this.ended && !turn.waitOutcome) turn.waitOutcome = 'call_ended';
    this.progress({ type: 'turn_done', report: turnReport(turn, this.turns, this.ended) });
  }

  // --- the line: one frame every 20 ms, caller audio when there is some, silence otherwise ---

  private startLine(): void {
    this.nextFrameDue = performance.now();
    const tick = () => {
      this.lineTimer = null;
      if (this.ended) return;
      // Scheduled against absolute times so timer drift never accumulates; after a stall the missed
      // frames go out at once, as a phone network delivers audio it buffered.
      while (this.nextFrameDue <= performance.now()) {
        this.sendFrame();
        this.nextFrameDue += FRAME_MS;
      }
      this.lineTimer = setTimeout(tick, Math.max(0, this.nextFrameDue - performance.now()));
    };
    tick();
  }

  private stopLine(): void {
    if (this.lineTimer) clearTimeout(this.lineTimer);
    this.lineTimer = null;
  }

  private sendFrame(): void {
    const u = this.queue[0];
    if (!u) {
      this.client.sendFrame(SILENCE);
      this.totals.framesSent++;
      return;
    }
    let frame = u.audio.subarray(u.offset, u.offset + FRAME_BYTES);
    if (frame.length < FRAME_BYTES) {
      const padded = new Uint8Array(FRAME_BYTES).fill(0xff);
      padded.set(frame);
      frame = padded;
    }
    if (u.offset === 0) this.onAudioStart(u.turn);
    u.turn.sentAt.push(this.client.now());
    this.client.sendFrame(frame);
    this.totals.framesSent++;
    u.offset += FRAME_BYTES;
    if (u.offset >= u.audio.length) {
      this.queue.shift();
      u.turn.audioEnded = true;
      this.handOver();
      u.done();
    }
  }

  /** Queues the caller's audio on the line; resolves once its last frame has been sent. */
  private speak(turn: Turn, audio: Uint8Array): Promise<void> {
    if (audio.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const release = () => {
        this.waiters.delete(release);
        resolve();
      };
      this.waiters.add(release);
      this.queue.push({ audio, offset: 0, turn, done: release });
    });
  }

  // A new caller turn owns the agent's output from its first frame, unless a reply is still playing:
  // then that reply keeps it until the agent clears it or it has played out after the caller finished.
  private onAudioStart(turn: Turn): void {
    if (!this.replyTurn || pending(this.replyTurn) === 0) this.replyTurn = turn;
    else this.nextTurn = turn;
  }

  private handOver(): void {
    if (this.nextTurn?.audioEnded && this.replyTurn && pending(this.replyTurn) === 0) {
      this.replyTurn = this.nextTurn;
      this.nextTurn = null;
    }
  }

  // --- the agent's side, in the order the client saw it ---

  private onStreamEvent(e: StreamClientEvent): void {
    switch (e.type) {
      case 'received': {
        const msg = e.msg;
        switch (msg.event) {
          case 'media': {
            const t = this.outputTurn();
            this.totals.framesReceived++;
            t.framesReceived++;
            t.lastFrameAt = e.at;
            t.lastActivityAt = e.at;
            this.unplayed.push(t);
            if (t.firstFrameAt === null) {
              t.firstFrameAt = e.at;
              const ref = replyReference(t, this.turns);
              this.progress({ type: 'reply_started', turn: t.index, latencyMs: ref === null ? null : Math.round(e.at - ref) });
            }
            break;
          }
          case 'mark': {
            const t = this.outputTurn();
            this.totals.marksReceived++;
            t.marksSent++;
            t.lastActivityAt = e.at;
            this.unechoed.push(t);
            break;
          }
          case 'clear': {
            this.totals.clears++;
            for (const t of this.unplayed) t.framesDropped++;
            this.totals.framesDropped += this.unplayed.length;
            this.unplayed = [];
            const t = this.replyTurn;
            if (t) {
              t.clearedAt ??= e.at;
              t.framesAtClear = t.framesReceived;
              t.lastActivityAt = e.at;
              const by = this.nextTurn?.bargeInto === t ? this.nextTurn : null;
              this.progress({ type: 'cleared', turn: t.index, afterCallerSpeechMs: by ? sinceSpeechStart(by, e.at) : null, playedMs: t.framesPlayed * FRAME_MS });
            }
            // The interrupted reply is over: what the agent sends now answers the caller who interrupted.
            if (this.nextTurn) {
              this.replyTurn = this.nextTurn;
              this.nextTurn = null;
            }
            break;
          }
        }
        break;
      }
      case 'played': {
        this.totals.framesPlayed++;
        const t = this.unplayed.shift();
        if (t) {
          t.framesPlayed++;
          t.lastActivityAt = e.at;
        }
        this.handOver();
        break;
      }
      case 'mark_echoed': {
        this.totals.marksEchoed++;
        const t = this.unechoed.shift();
        if (t) {
          t.marksEchoed++;
          t.lastActivityAt = e.at;
        }
        this.handOver();
        break;
      }
    }
  }

  // --- timing helpers ---

  private finish(ended: SimulationReport['ended']): void {
    if (this.ended) return;
    this.ended = ended;
    this.stopLine();
    for (const release of [...this.waiters]) release();
  }

  /** Sends `stop` as Twilio does when the caller hangs up, and waits briefly for the server to close. */
  private async hangUp(): Promise<void> {
    if (!this.ended) {
      this.hangingUp = true;
      this.stopLine();
      this.client.stop();
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([this.client.closed, new Promise<null>((r) => (timer = setTimeout(r, 3000, null)))]);
      clearTimeout(timer);
      // The server answers `stop` by ending the call and closing with 1000; anything else is worth flagging.
      const ok = closed !== null && (closed.code === 1000 || closed.code === 1005);
      this.finish({ by: 'caller', code: closed?.code ?? 0, reason: closed ? closed.reason : 'the server did not close the stream within 3 s of stop', abnormal: !ok });
    } else if (this.ended.by === 'interrupted') {
      this.client.stop();
    }
    this.client.close();
  }

  private sleep(ms: number): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const release = () => {
        clearTimeout(timer);
        this.waiters.delete(release);
        resolve();
      };
      const timer = setTimeout(release, ms);
      this.waiters.add(release);
    });
  }

  /** Polls `done` until it holds or the call ends. */
  private async until(done: () => boolean): Promise<void> {
    while (!this.ended && !done()) await this.sleep(POLL_MS);
  }
}
