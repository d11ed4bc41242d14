// One level of the call benchmark: N simulated Twilio calls against the real app, socket, media worker pool
// and Silero VAD, measured on the server's side. In conversation mode (the default) each call talks to an
// agent whose STT (Deepgram) and LLM (OpenAI) are zero-delay fakes in a child process and whose voice is
// Piper on the test voice in the media workers; in echo mode the agent plays each utterance back. See
// BENCHMARKS.md for what each figure means, bench/call-callers.ts for the callers and
// bench/conversation-fakes.ts for the fakes.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { TurnLatency } from '../src/calls/calls.table.js';
import type { WorkerStats } from '../src/media/workers/media-worker-pool.js';
import { writeTestPiperVoice } from '../test/fakes/piper-model.js';
import { startBenchServer, type Backends, type BenchServer } from './api-server.js';
import { FAKE_KEYS, type BargeInPlan, type CallMode, type CallerResult, type FakesWindow, type FromCallers, type FromFakes, type ToCallers, type ToFakes } from './call-protocol.js';
import { PROFILES, type ProfileName, type ProviderProfile } from './provider-profile.js';
import { percentiles, round2, type Percentiles } from './stats.js';

const RUN_TS = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
const CALLERS = fileURLToPath(new URL('./call-callers.ts', import.meta.url));
const FAKES = fileURLToPath(new URL('./conversation-fakes.ts', import.meta.url));
/** The Piper voice the conversation agent speaks with: the tiny test model (test/fakes/piper-model.ts). */
export const BENCH_VOICE = 'test-voice';
/** Every other reply is talked over, its caller's speech starting 500 ms after the reply's first frame. */
const BARGE_IN: BargeInPlan = { everyTurns: 2, afterMs: 500 };
/** Node's default; the histogram's samples include this interval, so it is subtracted from them. */
const ELD_RESOLUTION_MS = 10;
const SAMPLE_EVERY_MS = 1000;
const MIB = 2 ** 20;
/** Silero runs on 256-sample (32 ms) windows; the pool reports its cost per 160-sample (20 ms) frame pushed. */
const FRAMES_PER_WINDOW = 256 / 160;

/** What one level is asked to do. */
export interface CallLevelOptions {
  mode: CallMode;
  /** The fake providers' latencies (conversation mode); default `zero`. */
  profile?: ProviderProfile;
  /** The agent's `turnDetection.mode`; undefined: the agent's default (the setting is left out). */
  turn?: TurnMode;
  calls: number;
  /** Seconds measured, after the stagger window. */
  durationS: number;
  staggerMs: number;
  /** Media worker threads; undefined: the pool's default (cores - 1, at least 1), as `vocelio serve`. */
  workers?: number;
  databaseUrl?: string;
  redisUrl?: string;
  log(msg: string): void;
  onProgress?(p: Extract<FromCallers, { kind: 'progress' }>): void;
  signal?: AbortSignal;
}

/** The parts of the caller's wait that turn records keep (`TurnLatency`), in the order they happen. */
export const CALLER_WAIT_PARTS = ['endOfTurnMs', 'sttFinalMs', 'llmFirstTokenMs', 'firstChunkMs', 'ttsFirstByteMs', 'overheadMs'] as const;
export type CallerWaitPart = (typeof CALLER_WAIT_PARTS)[number];

/** How the benchmark's agent ends the caller's turn (the agent setting `turnDetection.mode`). */
export type TurnMode = 'fixed' | 'adaptive';

/** Latency percentiles with their sample count (0 samples: NaN percentiles). */
export type Samples = Percentiles & { samples: number };

/** Everything one level measured. */
export interface CallRun {
  mode: CallMode;
  /** The fake providers' latency profile (bench/provider-profile.ts). */
  profile: ProfileName;
  /** The agent's turn detection mode when the run set one; null: the agent's default. */
  turn: TurnMode | null;
  calls: number;
  workers: number;
  /** Length of the measured window, s. */
  durationS: number;
  staggerMs: number;
  /** Sessions live on the server when measuring started (should equal `calls`). */
  liveCalls: number;
  connectMs: number;
  /**
   * Conversation mode: the caller's end of speech (VAD decision, worker) -> the answer's first frame sent
   * (main thread), minus provider time (STT final wait, LLM time to first sentence, TTS first audio), ms:
   * `app.callLatencies.turnOverheadMs`. No samples in echo mode.
   */
  overheadMs: Samples;
  /** Conversation mode: the same without subtracting provider time, ms. */
  responseMs: Samples;
  /**
   * Conversation mode, measured by the callers: their last voiced frame sent (the level rule, `isVoiced`) ->
   * the answer's first frame received, ms. What a caller waits; the honest figure.
   */
  callerWaitMs: Samples;
  /** The same measured by the server: the last voiced frame received -> the answer's first frame sent (`app.callLatencies.callerWaitMs`). */
  callerWaitServerMs: Samples;
  /**
   * Conversation mode: the parts of the server's caller wait, p50 / p95 over the answers that started in the
   * window, from the turn records (`latency` of the assistant turns). Null in echo mode.
   */
  callerWaitParts: Record<CallerWaitPart, { p50: number; p95: number }> | null;
  /** Echo mode: VAD end-of-speech decision (worker) -> first echoed frame sent (main thread), ms. No samples in conversation mode. */
  echoOverheadMs: Samples;
  /**
   * VAD speech-onset decision (worker) -> `clear` sent (main thread), ms. Conversation callers talk over
   * every other reply; echo callers never do, so a sample there is a VAD false start.
   */
  bargeInMs: Samples;
  /** Server main thread, ms beyond the 10 ms resolution. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  eventLoopUtilization: number;
  /** Media workers' event-loop lag p99 per second (worst worker): the worst second and the mean over seconds. */
  workerLagMs: { max: number; mean: number };
  cpu: {
    /** Server process (main thread, media workers, libuv/onnx threads) over the window, % of one core. */
    serverPct: number;
    /** The same server, idle with its pool, before the calls connected. */
    idlePct: number;
    perCallPct: number;
    /** The caller process, for context: it shares the machine. */
    callersPct: number;
    /** The fake providers' process (conversation mode; 0 in echo mode): it shares the machine too. */
    fakesPct: number;
    /** Everything else on the machine over the window (all cores busy - server - callers - fakes): other work disturbs the figures. */
    otherPct: number;
  };
  memory: {
    /** Idle RSS: the mean of the figures before the calls and after they hung up (see rssPerCallMb). */
    rssIdleMb: number;
    /** Mean and peak RSS over the window (samples every second). */
    rssMb: number;
    rssPeakMb: number;
    /**
     * (mean RSS with the calls live - idle RSS) / calls. The process's RSS drifts by tens of MB on its own
     * (downwards for a while after start-up, as freed memory goes back to the OS); idle figures taken on
     * both sides of the window cancel a steady drift, not its jumps, so below about 10 calls this is noise.
     */
    rssPerCallMb: number;
    /** Main-thread heap after a forced GC, with the calls live vs idle. */
    heapPerCallMb: number;
  };
  vad: {
    /**
     * Media workers' busy time (event-loop utilization) per caller frame processed: VAD plus the little
     * around it. In conversation mode Piper's synthesis time (worker-measured, completed sentences) is
     * subtracted first, so this is an estimate that leaves in the cost of sentences cut by barge-in.
     */
    frameMs: number;
    /** frameMs x 1.6: the same cost per 32 ms Silero window (a 20 ms frame is 0.625 windows). */
    windowMs: number;
    /** Media workers busy, % of the window (mean over workers). */
    workerBusyPct: number;
    /**
     * The pool's own figure (`stats().vadMeanMs`): time from a frame's push to its VAD result, worst worker,
     * averaged over the seconds. It includes waiting behind other calls' windows on the same worker, so
     * under load it measures queueing more than cost.
     */
    pushLatencyMs: number;
  };
  /** Piper inside the calls (conversation mode): completed sentences, worker-measured synthesis time and audio. */
  tts: { sentences: number; synthMs: number; audioMs: number; rtf: number };
  /** What the fake providers did in the window (conversation mode). */
  fakes: { llmRequests: number; finalizes: number } | null;
  frames: {
    sentByCallers: number;
    receivedByServer: number;
    /** Sent by the callers but never counted by the server's sessions. */
    inboundLost: number;
    /** Agent frames the callers received (the echo, in echo mode). */
    received: number;
    /** Echo mode only: frames missing from the echo, and echoed frames that match nothing said. */
    dropped: number;
    corrupt: number;
    late: number;
    gapsOver60Ms: number;
    maxGapMs: number;
  };
  replies: {
    utterances: number;
    complete: number;
    missed: number;
    short: number;
    split: number;
    clears: number;
    /** Conversation mode: replies the callers talked over, and how many of those the server cleared. */
    bargeInsAttempted: number;
    bargeInsCleared: number;
  };
  /** Caller-observed: last speech frame sent -> first reply frame received (includes VAD's 400 ms end-of-speech silence). */
  turnLatencyMs: Percentiles;
  callers: { closedEarly: number; eventLoopDelayP99Ms: number; sendLagMs: { mean: number; max: number } };
  /** The machine's 1-minute load average when the level started and ended: other work on the machine shows here. */
  loadAverage: { before: number; after: number };
  interrupted: boolean;
}

/** A level's figures plus where they were taken. */
export interface CallLevelResult {
  run: CallRun;
  backends: Backends;
}

// `gc()` without starting node with --expose-gc: memory per call is read after a collection, so that
// garbage of the setup does not count as the calls' memory.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const round3 = (n: number): number => Math.round(n * 1000) / 1000;
const round4 = (n: number): number => Math.round(n * 10_000) / 10_000;

/** CPU time all cores have spent busy since boot, ms. */
function machineBusyMs(): number {
  return cpus().reduce((ms, c) => ms + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);
}

/** What the server side took at the end of the measured window. */
interface Measured {
  wallMs: number;
  /** All cores busy over the window, % of one core. */
  machinePct: number;
  cpuPct: number;
  elu: number;
  overhead: number[];
  response: number[];
  callerWait: number[];
  echoOverhead: number[];
  bargeIn: number[];
  tts: { requests: number; synthMs: number; audioMs: number };
  workerActiveMs: number;
  workerCount: number;
  framesProcessed: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Collects twice, a second apart: V8 and the allocator give freed memory back to the OS about a second after
 * a collection, and the server's start-up leaves hundreds of MB to give back.
 */
async function settle(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    gc();
    await sleep(1000);
  }
}

/** Mean RSS over `ms`, sampled every 250 ms. */
async function sampleRss(ms: number): Promise<number> {
  const samples: number[] = [];
  for (let t = 0; t < ms; t += 250) {
    await sleep(250);
    samples.push(process.memoryUsage.rss());
  }
  return mean(samples);
}

const mean = (xs: number[]): number => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);

/**
 * Busy time of the pool's workers between two `stats().perWorker` reads; NaN when a worker was replaced in
 * between (a crash), since the sum would then mix two threads.
 */
function workersBusyMs(start: WorkerStats[], end: WorkerStats[]): number {
  const same = start.length > 0 && end.length === start.length && end.every((w) => start.some((s) => s.id === w.id));
  return same ? end.reduce((ms, w) => ms + w.busyMs - start.find((s) => s.id === w.id)!.busyMs, 0) : Number.NaN;
}

/** The fake providers' child process, as the level uses it. */
interface FakesProcess {
  deepgramUrl: string;
  openaiBaseUrl: string;
  elevenlabsUrl: string | null;
  windowStart(): void;
  /** What the fakes did since `windowStart`; resolves when their report arrives. */
  windowEnd(): Promise<FakesWindow>;
  close(): Promise<void>;
}

/** Forks bench/conversation-fakes.ts and waits for its URLs. */
async function startFakes(profile: ProviderProfile): Promise<FakesProcess> {
  // Its own process: the fake Deepgram decodes every call's audio, which must not count as server CPU.
  const proc = fork(RUN_TS, [FAKES, profile.name], { stdio: ['ignore', 2, 2, 'ipc'], execArgv: [] });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const windows: Array<(w: FakesWindow) => void> = [];
  const ready = await new Promise<{ deepgramUrl: string; openaiBaseUrl: string; elevenlabsUrl: string | null }>((resolve, reject) => {
    proc.on('message', (m: FromFakes) => {
      switch (m.kind) {
        case 'ready':
          resolve(m);
          break;
        case 'window':
          windows.shift()?.(m.window);
          break;
        case 'failed':
          reject(new Error(`fake providers failed: ${m.message}`));
          break;
        default: {
          const never: never = m;
          throw new Error(`unexpected fakes message ${JSON.stringify(never)}`);
        }
      }
    });
    proc.once('error', reject);
    void exited.then(() => reject(new Error('the fake providers exited before they were ready')));
  }).catch((err: unknown) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill();
    throw err;
  });
  const tell = (m: ToFakes) => {
    if (proc.connected) proc.send(m);
  };
  return {
    ...ready,
    windowStart: () => tell({ kind: 'window-start' }),
    windowEnd: () =>
      new Promise<FakesWindow>((resolve, reject) => {
        if (!proc.connected) return reject(new Error('the fake providers are gone'));
        windows.push(resolve);
        tell({ kind: 'window-end' });
      }),
    async close() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      tell({ kind: 'close' });
      const timer = setTimeout(() => proc.kill(), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

const withCount = (values: number[]): Samples => ({ ...percentiles(values), samples: values.length });

/** The caller-wait parts of the answers that started inside the window, read from the turn records once the calls are over. */
async function callerWaitParts(server: BenchServer, callIds: string[], window: { from: number; to: number }): Promise<CallRun['callerWaitParts']> {
  const latencies: TurnLatency[] = [];
  for (const id of callIds) {
    for (const turn of await server.app.callTurns.list(server.organizationId, id)) {
      const at = turn.startedAt.getTime();
      if (turn.role === 'assistant' && turn.latency?.callerWaitMs !== undefined && at >= window.from && at <= window.to) latencies.push(turn.latency);
    }
  }
  const out = {} as Record<CallerWaitPart, { p50: number; p95: number }>;
  for (const part of CALLER_WAIT_PARTS) {
    const p = percentiles(latencies.flatMap((l) => (l[part] === undefined ? [] : [l[part]])));
    out[part] = { p50: p.p50, p95: p.p95 };
  }
  return out;
}

/** Runs one level on a fresh server (its own database, pool and sockets), then tears it all down. */
export async function runCallLevel(opts: CallLevelOptions): Promise<CallLevelResult> {
  const { log } = opts;
  const conversation = opts.mode === 'conversation';
  const profile = opts.profile ?? PROFILES.zero;
  let server: BenchServer | null = null;
  let child: ChildProcess | null = null;
  let fakes: FakesProcess | null = null;
  let voicesDir: string | null = null;
  try {
    const setupStarted = performance.now();
    let env: Record<string, string> | undefined;
    if (conversation) {
      voicesDir = await mkdtemp(join(tmpdir(), 'vocelio-bench-voices-'));
      await writeTestPiperVoice(voicesDir, BENCH_VOICE);
      fakes = await startFakes(profile);
      env = {
        DEEPGRAM_API_KEY: FAKE_KEYS.deepgram,
        DEEPGRAM_BASE_URL: fakes.deepgramUrl,
        OPENAI_API_KEY: FAKE_KEYS.openai,
        OPENAI_BASE_URL: fakes.openaiBaseUrl,
        ...(fakes.elevenlabsUrl ? { ELEVENLABS_API_KEY: FAKE_KEYS.elevenlabs, ELEVENLABS_BASE_URL: fakes.elevenlabsUrl } : {}),
      };
    }
    server = await startBenchServer({
      databaseUrl: opts.databaseUrl,
      redisUrl: opts.redisUrl,
      agents: 0,
      media: { workers: opts.workers, voicesDir: voicesDir ?? undefined },
      env,
      log,
    });
    const { app, pool } = server;
    const loadBefore = loadavg()[0]!;
    if (!pool) throw new Error('the bench server started without a media worker pool');

    const agent = conversation
      ? {
          name: 'Receptionist',
          systemPrompt: 'You are the receptionist of {{business}}. Answer in one or two short sentences.',
          variables: { business: 'Acme Bistro' },
          voice: profile.tts === 'elevenlabs' ? { provider: 'elevenlabs', voiceId: 'bench-voice' } : { provider: 'piper', voiceId: BENCH_VOICE },
          stt: { provider: 'deepgram', model: 'nova-3' },
          llm: { provider: 'openai', model: 'gpt-bench' },
          ...(opts.turn ? { turnDetection: { mode: opts.turn } } : {}),
        }
      : { name: 'Echo', voice: { provider: 'echo', voiceId: 'echo' } };
    const res = await app.inject({ method: 'POST', url: '/v1/agents', headers: { authorization: `Bearer ${server.ownerKey}` }, payload: agent });
    // Agents refuse unknown fields, so a server without the setting says so rather than ignoring it.
    if (res.statusCode === 400 && opts.turn) throw new Error(`--turn: the agent with turnDetection was refused; does this server's agent schema have it yet? (${res.body})`);
    if (res.statusCode !== 201) throw new Error(`creating the ${opts.mode} agent failed: ${res.statusCode} ${res.body}`);
    const agentId = res.json<{ id: string }>().id;
    const callIds: string[] = [];
    const tokens: string[] = [];
    for (let i = 0; i < opts.calls; i++) {
      const call = await app.calls.create(server.organizationId, { agentId, direction: 'inbound' });
      callIds.push(call.id);
      tokens.push(await app.calls.issueStreamToken(call));
    }
    const workers = pool.stats().workers;
    log(`${opts.calls} calls: server ready in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s (${workers} media worker${workers === 1 ? '' : 's'}); idle baseline...`);

    // Idle baseline: the same server with its pool, no calls.
    await settle();
    const idleHeap = process.memoryUsage().heapUsed;
    const idleCpu = process.cpuUsage();
    const idleWall = performance.now();
    const idleRssBefore = await sampleRss(3000);
    const idleCpuUsed = process.cpuUsage(idleCpu);
    const idlePct = ((idleCpuUsed.user + idleCpuUsed.system) / 1000 / (performance.now() - idleWall)) * 100;

    const port = new URL(server.baseUrl).port;
    const plan: ToCallers = { kind: 'plan', mode: opts.mode, bargeIn: BARGE_IN, url: `ws://127.0.0.1:${port}/twilio/media`, tokens, staggerMs: opts.staggerMs, durationS: opts.durationS };
    // A child process, not a worker thread: CPU time and RSS are per process, so only a separate process
    // keeps the callers' own cost out of the server's figures. Its stdout goes to our stderr (progress only).
    const proc = fork(RUN_TS, [CALLERS], { stdio: ['ignore', 2, 2, 'ipc'], execArgv: [] });
    child = proc;
    const abort = () => proc.connected && proc.send({ kind: 'abort' } satisfies ToCallers);
    opts.signal?.addEventListener('abort', abort, { once: true });

    const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
    let eluStart = performance.eventLoopUtilization();
    let cpuStart = process.cpuUsage();
    let wallStart = performance.now();
    let measured: Measured | null = null;
    let workersAtStart: WorkerStats[] = [];
    let framesAtStart = 0;
    let ttsAtStart = pool.stats().ttsTotals;
    let machineBusyStart = machineBusyMs();
    const framesNow = () => callIds.reduce((n, id) => n + (app.callSessions.get(id)?.framesIn ?? 0), 0);
    let liveCalls = 0;
    let connectMs = Number.NaN;
    let framesIn = 0;
    let heapLive = Number.NaN;
    let fakesWindow: Promise<FakesWindow | null> = Promise.resolve(null);
    const rssSamples: number[] = [];
    const lagSamples: number[] = [];
    const vadSamples: number[] = [];
    let sampler: NodeJS.Timeout | null = null;
    const latencies = app.callLatencies;
    const windowEpoch = { from: 0, to: 0 };

    const result = await new Promise<CallerResult>((resolve, reject) => {
      let done: CallerResult | null = null;
      let failure: Error | null = null;
      proc.on('message', (m: FromCallers) => {
        switch (m.kind) {
          case 'connected':
            connectMs = m.connectMs;
            log(`${m.calls} calls connected in ${(m.connectMs / 1000).toFixed(1)} s; starting them over ${opts.staggerMs} ms`);
            break;
          case 'measure-start':
            liveCalls = callIds.filter((id) => app.callSessions.has(id)).length;
            framesAtStart = framesNow();
            ttsAtStart = pool.stats().ttsTotals;
            machineBusyStart = machineBusyMs();
            workersAtStart = pool.stats().perWorker;
            for (const r of [latencies.echoOverheadMs, latencies.turnOverheadMs, latencies.turnResponseMs, latencies.callerWaitMs, latencies.bargeInMs]) r.reset();
            fakes?.windowStart();
            eld.reset();
            eld.enable();
            eluStart = performance.eventLoopUtilization();
            cpuStart = process.cpuUsage();
            wallStart = performance.now();
            windowEpoch.from = Date.now();
            sampler = setInterval(() => {
              rssSamples.push(process.memoryUsage.rss());
              const stats = pool.stats();
              lagSamples.push(stats.maxLagP99Ms);
              if (stats.vadMeanMs > 0) vadSamples.push(stats.vadMeanMs);
            }, SAMPLE_EVERY_MS);
            break;
          case 'progress':
            opts.onProgress?.(m);
            break;
          case 'quiet': {
            const wallMs = performance.now() - wallStart;
            windowEpoch.to = Date.now();
            const cpu = process.cpuUsage(cpuStart);
            eld.disable();
            if (sampler) clearInterval(sampler);
            const poolNow = pool.stats();
            const workerActiveMs = workersBusyMs(workersAtStart, poolNow.perWorker);
            const tts = poolNow.ttsTotals;
            measured = {
              wallMs,
              machinePct: ((machineBusyMs() - machineBusyStart) / wallMs) * 100,
              workerActiveMs,
              workerCount: workersAtStart.length,
              framesProcessed: framesNow() - framesAtStart,
              cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
              elu: performance.eventLoopUtilization(eluStart).utilization,
              overhead: latencies.turnOverheadMs.values(),
              response: latencies.turnResponseMs.values(),
              callerWait: latencies.callerWaitMs.values(),
              echoOverhead: latencies.echoOverheadMs.values(),
              bargeIn: latencies.bargeInMs.values(),
              tts: { requests: tts.requests - ttsAtStart.requests, synthMs: tts.synthMs - ttsAtStart.synthMs, audioMs: tts.audioMs - ttsAtStart.audioMs },
            };
            if (fakes) fakesWindow = fakes.windowEnd();
            // Frames still in flight reach the sessions within a few ms; then count, collect and hang up.
            void sleep(500).then(() => {
              framesIn = callIds.reduce((n, id) => n + (app.callSessions.get(id)?.framesIn ?? 0), 0);
              gc();
              heapLive = process.memoryUsage().heapUsed;
              if (proc.connected) proc.send({ kind: 'hang-up' } satisfies ToCallers);
            });
            break;
          }
          case 'done':
            done = m.result;
            break;
          case 'failed':
            failure = new Error(`callers failed: ${m.message}`);
            break;
          default: {
            const never: never = m;
            throw new Error(`unexpected callers message ${JSON.stringify(never)}`);
          }
        }
      });
      proc.on('error', (err) => {
        failure ??= err;
      });
      proc.on('exit', (code, signal) => {
        opts.signal?.removeEventListener('abort', abort);
        if (sampler) clearInterval(sampler);
        if (done) resolve(done);
        else reject(failure ?? new Error(`callers exited (${signal ?? code}) before reporting`));
      });
      proc.send(plan);
    });
    child = null;
    const fakesUsed = await fakesWindow;
    // The idle server again, calls gone: RSS drifts on its own, and the mean of idle figures taken on both
    // sides of the window is what a steady drift alone would have made of the window's mean.
    await settle();
    const idleRssAfter = await sampleRss(3000);
    const idleRss = (idleRssBefore + idleRssAfter) / 2;
    const parts = conversation ? await callerWaitParts(server, callIds, windowEpoch) : null;

    const w = measured as Measured | null;
    if (!w) throw new Error('the callers finished without a measured window');
    const eldMs = (ns: number): number => (eld.count > 0 ? round2(Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS)) : Number.NaN);
    const n = opts.calls;
    const rssMean = mean(rssSamples);
    const rssPeak = Math.max(...rssSamples);
    // Piper runs on the same workers; its worker-measured synthesis time is not VAD. That time is wall-clock
    // inside the worker, so on a saturated machine (the worker preempted mid-sentence) it can exceed the
    // worker's busy time: then there is no estimate.
    const vadBusyMs = w.workerActiveMs - w.tts.synthMs;
    const vadFrameMs = vadBusyMs > 0 ? vadBusyMs / w.framesProcessed : Number.NaN;
    const fakesPct = fakesUsed?.cpuPct ?? 0;
    const run: CallRun = {
      mode: opts.mode,
      profile: profile.name,
      turn: opts.turn ?? null,
      calls: n,
      workers,
      durationS: round2(w.wallMs / 1000),
      staggerMs: opts.staggerMs,
      liveCalls,
      connectMs: round2(connectMs),
      overheadMs: withCount(w.overhead),
      responseMs: withCount(w.response),
      callerWaitMs: withCount(conversation ? result.turnLatencyMs : []),
      callerWaitServerMs: withCount(w.callerWait),
      callerWaitParts: parts,
      echoOverheadMs: withCount(w.echoOverhead),
      bargeInMs: withCount(w.bargeIn),
      eventLoopDelayMs: { p50: eldMs(eld.percentile(50)), p99: eldMs(eld.percentile(99)), max: eldMs(eld.max) },
      eventLoopUtilization: round2(w.elu),
      workerLagMs: { max: round2(Math.max(0, ...lagSamples)), mean: round2(mean(lagSamples)) },
      cpu: {
        serverPct: round2(w.cpuPct),
        idlePct: round2(idlePct),
        perCallPct: round2((w.cpuPct - idlePct) / n),
        callersPct: round2(result.cpuPct),
        fakesPct: round2(fakesPct),
        otherPct: round2(Math.max(0, w.machinePct - w.cpuPct - result.cpuPct - fakesPct)),
      },
      memory: {
        rssIdleMb: round2(idleRss / MIB),
        rssMb: round2(rssMean / MIB),
        rssPeakMb: round2(rssPeak / MIB),
        rssPerCallMb: round2((rssMean - idleRss) / MIB / n),
        heapPerCallMb: round2((heapLive - idleHeap) / MIB / n),
      },
      vad: {
        frameMs: round3(vadFrameMs),
        windowMs: round3(vadFrameMs * FRAMES_PER_WINDOW),
        workerBusyPct: round2((w.workerActiveMs / w.wallMs / w.workerCount) * 100),
        pushLatencyMs: round3(mean(vadSamples)),
      },
      tts: { sentences: w.tts.requests, synthMs: round2(w.tts.synthMs), audioMs: round2(w.tts.audioMs), rtf: w.tts.audioMs > 0 ? round4(w.tts.synthMs / w.tts.audioMs) : Number.NaN },
      fakes: fakesUsed ? { llmRequests: fakesUsed.llmRequests, finalizes: fakesUsed.finalizes } : null,
      frames: {
        sentByCallers: result.framesSent,
        receivedByServer: framesIn,
        inboundLost: result.framesSent - framesIn,
        received: result.framesReceived,
        dropped: result.droppedFrames,
        corrupt: result.corruptFrames,
        late: result.lateFrames,
        gapsOver60Ms: result.gapsOver60Ms,
        maxGapMs: round2(result.maxGapMs),
      },
      replies: {
        utterances: result.utterances,
        complete: result.replies,
        missed: result.missedReplies,
        short: result.shortReplies,
        split: result.splitReplies,
        clears: result.clears,
        bargeInsAttempted: result.bargeInsAttempted,
        bargeInsCleared: result.bargeInsCleared,
      },
      turnLatencyMs: percentiles(result.turnLatencyMs),
      callers: { closedEarly: result.closedEarly, eventLoopDelayP99Ms: round2(result.eventLoopDelayP99Ms), sendLagMs: { mean: round2(result.sendLagMs.mean), max: round2(result.sendLagMs.max) } },
      loadAverage: { before: round2(loadBefore), after: round2(loadavg()[0]!) },
      interrupted: result.interrupted,
    };
    return { run, backends: server.backends };
  } finally {
    // Only on failure is the child still running here; it is ours, so end it by its handle.
    if (child && child.exitCode === null && child.signalCode === null) child.kill();
    await server?.close();
    await fakes?.close();
    if (voicesDir) await rm(voicesDir, { recursive: true, force: true });
  }
}
