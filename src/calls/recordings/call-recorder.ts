// Two-channel call recording built from the media the call already moves: the caller's frames from Twilio
// and the agent's frames on their way to Twilio. Nothing is re-encoded or mixed on the hot path beyond a
// table lookup per sample, and the audio goes to a temp file about once a second, so a long call costs a few
// fixed buffers, not its length in memory.
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { decodeMulawSample, MULAW_SILENCE } from '../../media/audio/mulaw.js';

/** Sample rate of the recording: Twilio's, so no resampling. */
export const RECORDING_SAMPLE_RATE = 8000;
/** Channels: 0 = caller, 1 = agent. */
export const RECORDING_CHANNELS = 2;
/** Size of the canonical PCM WAV header this recorder writes. */
export const WAV_HEADER_BYTES = 44;

const BYTES_PER_FRAME = RECORDING_CHANNELS * 2;
/** Audio collected before a write: one second keeps syscalls rare and the loss on a crash small. */
const FLUSH_SAMPLES = RECORDING_SAMPLE_RATE;
/** Writes waiting on a slow disk before the recording gives up rather than hold the call's audio in memory. */
const MAX_PENDING_WRITES = 30;
/** WAV sizes are 32-bit; stop well before they would wrap (about 37 hours of stereo 8 kHz). */
const MAX_DATA_BYTES = 0xffff_ffff - WAV_HEADER_BYTES;

/** Options of a recorder. */
export interface CallRecorderOptions {
  /** Told about a failed write; the recording stops, the call goes on. Never throws into the call path. */
  onError?: (err: Error) => void;
  /** Agent audio queued ahead of what the caller has heard, beyond which the oldest is dropped. Default 10 s. */
  maxAgentQueueMs?: number;
}

/** What a finished recording is. */
export interface FinishedRecording {
  /** The WAV file (in the temp directory; the caller moves it into the store). */
  path: string;
  /** File size, header included. */
  bytes: number;
  durationMs: number;
}

type State = 'recording' | 'finishing' | 'done' | 'failed';

/**
 * Records a call as a stereo 8 kHz 16-bit PCM WAV (caller left, agent right), written progressively to a
 * temp file. The caller's frames are the clock: Twilio sends one every 20 ms, silence included, and each
 * becomes 20 ms of the file with whatever agent audio the caller was hearing at that moment beside it.
 */
export class CallRecorder {
  private state: State = 'recording';
  /** Interleaved PCM16 LE waiting to be written. */
  private pending: Buffer;
  private pendingSamples = 0;
  private dataBytes = 0;
  private writes: Promise<void> = Promise.resolve();
  private pendingWrites = 0;
  /** Buffers whose write completed, reused so a long call allocates nothing per second. */
  private readonly spare: Buffer[] = [];
  private finished: Promise<FinishedRecording | null> | null = null;
  /** Agent audio (mu-law) sent to Twilio but not yet played, as a ring buffer. */
  private readonly agentQueue: Uint8Array;
  private agentHead = 0;
  private agentLength = 0;
  private readonly onError: (err: Error) => void;

  private constructor(
    private readonly file: FileHandle,
    /** The temp file being written. */
    readonly path: string,
    options: CallRecorderOptions,
  ) {
    this.pending = Buffer.allocUnsafe(FLUSH_SAMPLES * BYTES_PER_FRAME);
    const queueMs = options.maxAgentQueueMs ?? 10_000;
    this.agentQueue = new Uint8Array(Math.max(160, Math.round((queueMs * RECORDING_SAMPLE_RATE) / 1000)));
    this.onError = options.onError ?? (() => {});
  }

  /** Opens a temp WAV file for one call in `tempDir` (created if missing). */
  static async start(tempDir: string, callId: string, options: CallRecorderOptions = {}): Promise<CallRecorder> {
    // Recordings are personal data: readable by the service's user only.
    await mkdir(tempDir, { recursive: true, mode: 0o700 });
    const safe = callId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 100);
    const path = join(tempDir, `${safe}-${randomBytes(6).toString('hex')}.wav`);
    const file = await open(path, 'wx', 0o600);
    try {
      // Sizes are patched by finish(); a crash leaves a file whose header says "empty" but whose audio is there.
      await file.write(wavHeader(0), 0, WAV_HEADER_BYTES, 0);
    } catch (err) {
      await file.close().catch(() => {});
      await unlink(path).catch(() => {});
      throw err;
    }
    return new CallRecorder(file, path, options);
  }

  /** Audio recorded so far, in ms (by the caller's clock). */
  get durationMs(): number {
    return ((this.dataBytes / BYTES_PER_FRAME + this.pendingSamples) * 1000) / RECORDING_SAMPLE_RATE;
  }

  /** Agent audio queued and not yet heard by the caller, in bytes (8 per ms). */
  get agentQueuedBytes(): number {
    return this.agentLength;
  }

  /**
   * One inbound mu-law frame: it becomes the caller channel, and as much queued agent audio as it is long
   * becomes the agent channel beside it (silence when the agent is not speaking).
   */
  caller(mulawFrame: Uint8Array): void {
    if (this.state !== 'recording') return;
    const q = this.agentQueue;
    const cap = q.length;
    for (let i = 0; i < mulawFrame.length; i++) {
      let agentCode = MULAW_SILENCE;
      if (this.agentLength > 0) {
        agentCode = q[this.agentHead]!;
        this.agentHead = this.agentHead + 1 === cap ? 0 : this.agentHead + 1;
        this.agentLength--;
      }
      const at = this.pendingSamples * BYTES_PER_FRAME;
      this.pending.writeInt16LE(decodeMulawSample(mulawFrame[i]!), at);
      this.pending.writeInt16LE(decodeMulawSample(agentCode), at + 2);
      if (++this.pendingSamples === FLUSH_SAMPLES) {
        this.flush();
        if (this.state !== 'recording') return;
      }
    }
  }

  /** Agent audio as it is sent to Twilio; it plays out against the caller's clock. */
  agent(mulawFrame: Uint8Array): void {
    if (this.state !== 'recording') return;
    const q = this.agentQueue;
    const cap = q.length;
    let src = mulawFrame;
    // A stuck inbound stream must not grow memory: keep only the newest `cap` bytes.
    if (src.length > cap) src = src.subarray(src.length - cap);
    const overflow = this.agentLength + src.length - cap;
    if (overflow > 0) {
      this.agentHead = (this.agentHead + overflow) % cap;
      this.agentLength -= overflow;
    }
    let tail = (this.agentHead + this.agentLength) % cap;
    let offset = 0;
    while (offset < src.length) {
      const n = Math.min(src.length - offset, cap - tail);
      q.set(src.subarray(offset, offset + n), tail);
      offset += n;
      tail = (tail + n) % cap;
    }
    this.agentLength += src.length;
  }

  /** Twilio was told to `clear`: the queued agent audio will never be played, so it is not recorded either. */
  agentCleared(): void {
    this.agentHead = 0;
    this.agentLength = 0;
  }

  /** Resolves once every write handed out so far has reached the file. */
  drain(): Promise<void> {
    return this.writes;
  }

  /**
   * Writes what is left, fixes the header sizes and closes the file. Returns the file, or null (and no file)
   * when nothing was recorded or the recording failed. Agent audio still queued was never heard and is left out.
   */
  finish(): Promise<FinishedRecording | null> {
    this.finished ??= this.doFinish();
    return this.finished;
  }

  /** Stops and deletes the temp file (a call that must not keep its recording). No-op after finish(). */
  async abort(): Promise<void> {
    if (this.state === 'done' || this.state === 'finishing') return;
    this.state = 'failed';
    this.finished = Promise.resolve(null);
    await this.writes;
    await this.discard();
  }

  private async doFinish(): Promise<FinishedRecording | null> {
    if (this.state === 'recording') {
      this.state = 'finishing';
      this.flush();
    }
    await this.writes;
    if (this.state === 'failed' || this.dataBytes === 0) {
      this.state = 'failed';
      await this.discard();
      return null;
    }
    try {
      await this.file.write(wavHeader(this.dataBytes), 0, WAV_HEADER_BYTES, 0);
      await this.file.close();
    } catch (err) {
      this.fail(err);
      await this.discard();
      return null;
    }
    this.state = 'done';
    return { path: this.path, bytes: WAV_HEADER_BYTES + this.dataBytes, durationMs: ((this.dataBytes / BYTES_PER_FRAME) * 1000) / RECORDING_SAMPLE_RATE };
  }

  /** Hands the collected audio to the serialized write chain and starts a fresh buffer. */
  private flush(): void {
    if (this.pendingSamples === 0) return;
    const bytes = this.pendingSamples * BYTES_PER_FRAME;
    if (this.dataBytes + bytes > MAX_DATA_BYTES) {
      this.fail(new Error('recording reached the WAV size limit'));
      return;
    }
    if (this.pendingWrites >= MAX_PENDING_WRITES) {
      this.fail(new Error(`recording disk writes fell ${MAX_PENDING_WRITES} s behind; recording stopped`));
      return;
    }
    const chunk = this.pending;
    const position = WAV_HEADER_BYTES + this.dataBytes;
    this.dataBytes += bytes;
    this.pending = this.spare.pop() ?? Buffer.allocUnsafe(FLUSH_SAMPLES * BYTES_PER_FRAME);
    this.pendingSamples = 0;
    this.pendingWrites++;
    this.writes = this.writes.then(async () => {
      try {
        if (this.state !== 'failed') await writeFully(this.file, chunk, bytes, position);
      } catch (err) {
        this.fail(err);
      } finally {
        this.pendingWrites--;
        if (this.spare.length < 2) this.spare.push(chunk);
      }
    });
  }

  private fail(err: unknown): void {
    if (this.state === 'failed') return;
    this.state = 'failed';
    this.pendingSamples = 0;
    this.agentCleared();
    try {
      this.onError(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // The reporter's own failure must not reach the call path either.
    }
  }

  private async discard(): Promise<void> {
    await this.file.close().catch(() => {});
    await unlink(this.path).catch(() => {});
  }
}

async function writeFully(file: FileHandle, chunk: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await file.write(chunk, done, length - done, position + done);
    if (bytesWritten === 0) throw new Error('recording write made no progress');
    done += bytesWritten;
  }
}

/** The canonical 44-byte header of a stereo 8 kHz 16-bit PCM WAV holding `dataBytes` of audio. */
export function wavHeader(dataBytes: number): Buffer {
  const h = Buffer.alloc(WAV_HEADER_BYTES);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(RECORDING_CHANNELS, 22);
  h.writeUInt32LE(RECORDING_SAMPLE_RATE, 24);
  h.writeUInt32LE(RECORDING_SAMPLE_RATE * BYTES_PER_FRAME, 28);
  h.writeUInt16LE(BYTES_PER_FRAME, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}
