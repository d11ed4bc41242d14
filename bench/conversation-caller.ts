// A simulated caller talking to a conversation agent (STT -> LLM -> Piper), for the call benchmark's
// conversation mode. It speaks a fixture utterance in real time, keeps sending silence while the agent
// answers, and once its playback (simulated by the client, real time) has reached the reply's last mark,
// pauses 300 ms and says the next utterance. On every `everyTurns`-th reply it does not wait: it starts the
// next utterance `afterMs` after the reply's first frame arrived (its speech starting right then), so the
// server's VAD sees speech over the agent and must send `clear` (barge-in).
import type { StreamClientEvent } from '../src/simulator/twilio-stream-client.js';
import type { BargeInPlan } from './call-protocol.js';
import { ClockedCaller, FRAME_MS, GAP_MS, PAUSE_FRAMES, REPLY_MAX_MS, REPLY_TIMEOUT_MS, SILENCE, type Totals, type Utterance } from './caller-common.js';

type State = 'speak' | 'await' | 'pause' | 'done';

interface Reply {
  /** The caller turn it answers. */
  seq: number;
  firstAt: number;
  lastAt: number;
  count: number;
  /** The last mark the server sent after this reply's audio, and whether audio came after it. */
  lastMark: string | null;
  audioAfterMark: boolean;
}

/** One caller of a conversation agent; see the file header. */
export class ConversationCaller extends ClockedCaller {
  private state: State = 'speak';
  /** The caller turn being spoken or answered. */
  private seq = 0;
  private utt: number;
  private k = 0;
  /** The utterance being spoken talks over a reply, and whether `clear` has come for it. */
  private bargingIn = false;
  private bargeCleared = false;
  /** When (client time) to start talking over the current reply; null: let it play out. */
  private bargeAt: number | null = null;
  private speechEndSentAt = Number.NaN;
  private awaitSince = 0;
  private replyStartedFor = -1;
  private replyDoneFor = -1;
  private pauseLeft = 0;
  private readPos = 0;
  private reply: Reply | null = null;
  /** The last mark the simulated playback reached (not dropped by a clear). */
  private lastPlayedMark: string | null = null;

  constructor(
    url: string,
    token: string,
    first: number,
    private readonly utterances: Utterance[],
    totals: Totals,
    private readonly bargeIn: BargeInPlan,
  ) {
    super(url, token, totals);
    this.utt = first;
  }

  protected override onStreamEvent(event: StreamClientEvent): void {
    if (event.type === 'mark_echoed' && !event.cleared) this.lastPlayedMark = event.name;
  }

  protected override onFinish(): void {
    this.state = 'done';
  }

  private isBargeTurn(seq: number): boolean {
    const every = this.bargeIn.everyTurns;
    return every > 0 && seq % every === every - 1;
  }

  private startUtterance(overReply: boolean): void {
    this.seq++;
    this.utt = (this.utt + 1) % this.utterances.length;
    // Talking over a reply starts at the first speech frame, so speech begins exactly `afterMs` into the reply.
    this.k = overReply ? this.utterances[this.utt]!.firstSpeech : 0;
    this.bargingIn = overReply;
    this.bargeCleared = false;
    this.bargeAt = null;
    this.speechEndSentAt = Number.NaN;
    this.state = 'speak';
    if (overReply) this.totals.bargeInsAttempted++;
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
          this.bargingIn = false;
          this.awaitSince = this.client.now();
        }
        return frame;
      }
      case 'await': {
        const now = this.client.now();
        const waited = now - this.awaitSince;
        if (this.replyDoneFor === this.seq) {
          this.pause();
        } else if (this.bargeAt !== null && now >= this.bargeAt) {
          this.startUtterance(true);
          return this.nextFrame();
        } else if (this.replyStartedFor !== this.seq && waited > REPLY_TIMEOUT_MS) {
          this.totals.missedReplies++;
          this.pause();
        } else if (waited > REPLY_MAX_MS) {
          this.reply = null;
          this.pause();
        }
        return SILENCE;
      }
      case 'pause':
        if (--this.pauseLeft <= 0) this.startUtterance(false);
        return SILENCE;
      case 'done':
        return SILENCE;
      default: {
        const never: never = this.state;
        throw new Error(`unknown caller state ${String(never)}`);
      }
    }
  }

  private pause(): void {
    this.state = 'pause';
    this.pauseLeft = PAUSE_FRAMES;
    this.bargeAt = null;
  }

  protected readReceived(): void {
    const received = this.client.received;
    for (; this.readPos < received.length; this.readPos++) {
      const { at, msg } = received[this.readPos]!;
      switch (msg.event) {
        case 'media':
          this.onAgentFrame(at);
          break;
        case 'mark':
          if (this.reply) {
            this.reply.lastMark = msg.mark.name;
            this.reply.audioAfterMark = false;
          }
          break;
        case 'clear':
          this.totals.clears++;
          if (this.bargingIn && !this.bargeCleared) {
            this.totals.bargeInsCleared++;
            this.bargeCleared = true;
          }
          this.reply = null;
          break;
      }
    }
    this.checkReplyHeard();
  }

  private onAgentFrame(at: number): void {
    const t = this.totals;
    t.framesReceived++;
    let reply = this.reply;
    if (!reply) {
      reply = { seq: this.seq, firstAt: at, lastAt: at, count: 0, lastMark: null, audioAfterMark: true };
      this.reply = reply;
      // VAD ends the turn 400 ms after the last speech frame, while the clip's trailing silence may still be
      // going out: a reply then is on time. One that starts before the last speech frame answers a piece of
      // the utterance (VAD ended the turn at a pause).
      const speechSent = this.state === 'await' || (this.state === 'speak' && this.k > this.utterances[this.utt]!.lastSpeech);
      if (speechSent && this.replyStartedFor !== this.seq) {
        this.replyStartedFor = this.seq;
        if (Number.isFinite(this.speechEndSentAt)) t.turnLatencyMs.push(at - this.speechEndSentAt);
        if (this.isBargeTurn(this.seq)) this.bargeAt = at + this.bargeIn.afterMs;
      } else {
        // Started while the caller was still talking, or after it had given up on the reply.
        t.splitReplies++;
      }
    } else {
      const gap = at - reply.lastAt;
      if (gap > GAP_MS) t.gapsOver60Ms++;
      t.maxGapMs = Math.max(t.maxGapMs, gap);
    }
    // Playback starts with the first frame; frame q plays at firstAt + 20 q and must be there by then.
    if (at > reply.firstAt + reply.count * FRAME_MS) t.lateFrames++;
    reply.count++;
    reply.lastAt = at;
    reply.audioAfterMark = true;
  }

  // The reply is heard when playback has reached the last mark sent and no audio came after that mark:
  // Piper runs far ahead of real time, so a reply's later sentences are queued long before its first ends.
  private checkReplyHeard(): void {
    const reply = this.reply;
    if (!reply || reply.lastMark === null || reply.audioAfterMark || this.lastPlayedMark !== reply.lastMark) return;
    this.reply = null;
    this.totals.replies++;
    this.replyDoneFor = reply.seq;
  }
}
