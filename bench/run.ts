// `npm run bench`: the call benchmark (default), or the HTTP API benchmark with --api. See BENCHMARKS.md.
//   calls: [--echo] (echo agents instead of conversation agents) [--calls N] (one level; default the sweep
//          1, 10, 50, 100) [--duration S] (default 20) [--workers N] (media worker threads; default
//          cores - 1) [--stagger MS] (callers start over this window; default 5000, echo 1000)
//          [--profile zero|cloud] (the fake providers' latencies; default zero, see BENCHMARKS.md)
//          [--turn fixed|adaptive] (the agent's turnDetection.mode; default: the agent's default) [--json] [--write]
//          A conversation run also runs a short echo level (--calls N, else 50 calls), Piper's RTF and the
//          ElevenLabs SDK check.
//   API:   --api [--rate N] (default 500 req/s) [--duration S] (default 10) [--json] [--write]
// Progress goes to stderr; stdout carries only the result (exactly one JSON object with --json).
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runApiBench } from './api-bench.js';
import type { Backends } from './api-server.js';
import { runCallLevel, type CallLevelOptions, type CallRun, type TurnMode } from './call-bench.js';
import { parseProfile, type ProviderProfile } from './provider-profile.js';
import type { CallMode } from './call-protocol.js';
import { CALL_BUDGETS, callJson, callMarkdownSection, callSectionKey, humanCallReport, type CallReport } from './call-report.js';
import { measureElevenLabsSdkOverhead, type ElevenLabsSdkOverhead } from './elevenlabs-sdk-bench.js';
import { describeMachine } from './machine.js';
import { measurePiperRtf, type PiperBenchResult } from './piper-bench.js';
import { backendsLabel, writeSection } from './report.js';

const CALL_LEVELS = [1, 10, 50, 100];
/**
 * Callers start at evenly spread offsets over this window. Conversation calls: about one turn cycle (an
 * utterance, the reply, a pause: 4-6 s), so the calls' turns fall at independent moments as real calls'
 * do, instead of all 50 ending their speech within the same second. Echo calls: 1 s, as before.
 */
const STAGGER_MS: Record<CallMode, number> = { conversation: 5000, echo: 1000 };
/** The echo level a conversation run adds for `echoOverheadMs` is measured at most this long. */
const ECHO_SIDE_DURATION_S = 10;
const BENCHMARKS_MD = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));

const log = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

type Options =
  | { mode: 'api'; rate: number; durationS: number; json: boolean; write: boolean }
  | {
      mode: 'calls';
      agents: CallMode;
      calls: number | null;
      workers: number | undefined;
      durationS: number;
      staggerMs: number | undefined;
      profile: ProviderProfile;
      turn: TurnMode | undefined;
      json: boolean;
      write: boolean;
    };

function positive(name: string, raw: string | undefined, fallback: number, integer = false): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${raw}"`);
  return n;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      api: { type: 'boolean' },
      echo: { type: 'boolean' },
      rate: { type: 'string' },
      calls: { type: 'string' },
      workers: { type: 'string' },
      stagger: { type: 'string' },
      duration: { type: 'string' },
      profile: { type: 'string' },
      turn: { type: 'string' },
      json: { type: 'boolean' },
      write: { type: 'boolean' },
    },
    strict: true,
  });
  const json = values.json ?? false;
  const write = values.write ?? false;
  if (values.api) {
    if (values.calls !== undefined || values.workers !== undefined || values.stagger !== undefined || values.echo || values.profile !== undefined || values.turn !== undefined) {
      throw new Error('--calls, --workers, --stagger, --echo, --profile and --turn belong to the call benchmark, not --api');
    }
    return { mode: 'api', rate: positive('rate', values.rate, 500), durationS: positive('duration', values.duration, 10), json, write };
  }
  if (values.rate !== undefined) throw new Error('--rate belongs to the API benchmark: npm run bench -- --api --rate N');
  if (values.echo && (values.profile !== undefined || values.turn !== undefined)) throw new Error('--profile and --turn set up conversation agents; echo agents have no providers and no turns');
  if (values.turn !== undefined && values.turn !== 'fixed' && values.turn !== 'adaptive') throw new Error(`--turn must be fixed or adaptive, got "${values.turn}"`);
  return {
    mode: 'calls',
    agents: values.echo ? 'echo' : 'conversation',
    calls: values.calls === undefined ? null : positive('calls', values.calls, 1, true),
    workers: values.workers === undefined ? undefined : positive('workers', values.workers, 1, true),
    durationS: positive('duration', values.duration, 20),
    staggerMs: values.stagger === undefined ? undefined : positive('stagger', values.stagger, 1, true),
    profile: parseProfile(values.profile),
    turn: values.turn as TurnMode | undefined,
    json,
    write,
  };
}

// Connection strings may carry passwords; the command recorded in BENCHMARKS.md must not.
const redact = (url: string): string => url.replace(/\/\/([^:/@]+):([^@]+)@/, '//$1:***@');

/** The command as a person would retype it. */
function commandLine(args: string[]): string {
  const env = (['DATABASE_URL', 'REDIS_URL'] as const).flatMap((name) => {
    const value = process.env[name]?.trim();
    return value ? [`${name}=${redact(value)}`] : [];
  });
  const run = process.env.npm_lifecycle_event === 'bench' ? `npm run bench${args.length > 0 ? ' --' : ''}` : 'node bin/run-ts.js bench/run.ts';
  return [...env, run, ...args].join(' ');
}

/** One progress line per second (or one updating line on a terminal). */
function callProgress(calls: number, mode: CallMode): { show(p: { elapsedS: number; totalS: number; utterances: number; replies: number }): void; end(): void } {
  const tty = process.stderr.isTTY;
  let shown = false;
  return {
    show(p) {
      const text = `${calls} ${mode} calls: ${p.elapsedS.toFixed(0).padStart(3)}/${p.totalS} s  utterances ${p.utterances}  replies ${p.replies}`;
      if (tty) {
        process.stderr.write(`\r${text.padEnd(78)}`);
        shown = true;
      } else {
        log(text);
      }
    },
    end() {
      if (shown) process.stderr.write('\n');
      shown = false;
    },
  };
}

/** One level with progress on stderr, and a one-line summary once it is done. */
async function runLevel(opts: Omit<CallLevelOptions, 'log' | 'onProgress'>): Promise<{ run: CallRun; backends: Backends }> {
  const progress = callProgress(opts.calls, opts.mode);
  try {
    return await runCallLevel({ ...opts, log, onProgress: (p) => progress.show(p) });
  } finally {
    progress.end();
  }
}

function summary(r: CallRun): string {
  const common =
    `event-loop p99 ${r.eventLoopDelayMs.p99} ms, CPU/call ${r.cpu.perCallPct} %, RSS/call ${r.memory.rssPerCallMb} MB, ` +
    `VAD/frame ${r.vad.frameMs} ms, late ${r.frames.late}`;
  if (r.mode === 'echo') {
    const o = r.echoOverheadMs;
    return `${r.calls} echo calls: echo overhead p50/p95/p99 ${o.p50}/${o.p95}/${o.p99} ms (${o.samples} samples), ${common}, dropped ${r.frames.dropped}`;
  }
  const o = r.overheadMs;
  const w = r.callerWaitMs;
  return (
    `${r.calls} calls (profile ${r.profile}${r.turn ? `, turn ${r.turn}` : ''}): caller wait p50/p95 ${w.p50}/${w.p95} ms (${w.samples}; server ${r.callerWaitServerMs.p50}/${r.callerWaitServerMs.p95}), overhead p50/p95/p99 ${o.p50}/${o.p95}/${o.p99} ms (${o.samples} turns), barge-in p95 ${r.bargeInMs.p95} ms (${r.bargeInMs.samples}), ` +
    `${common}, Piper RTF in calls ${r.tts.rtf}, missed ${r.replies.missed}`
  );
}

async function runCalls(opts: Extract<Options, { mode: 'calls' }>, command: string, signal: AbortSignal, databaseUrl?: string, redisUrl?: string): Promise<void> {
  const levels = opts.calls === null ? CALL_LEVELS : [opts.calls];
  const conversation = opts.agents === 'conversation';
  const staggerMs = opts.staggerMs ?? STAGGER_MS[opts.agents];
  log(
    `call benchmark, ${conversation ? (opts.profile.tts === 'elevenlabs' ? `conversation agents (fake Deepgram, OpenAI and ElevenLabs, profile ${opts.profile.name})` : `conversation agents (fake Deepgram and OpenAI, Piper test voice, profile ${opts.profile.name})`) : 'echo mode'}: ` +
      `${levels.join(', ')} concurrent calls started over ${staggerMs} ms, then ${opts.durationS} s measured each (${databaseUrl ? 'PostgreSQL' : 'PGlite'}, ${redisUrl ? 'Redis' : 'no Redis'})`,
  );
  const common = { workers: opts.workers, databaseUrl, redisUrl, signal };
  const runs: CallRun[] = [];
  let backends: Backends | null = null;
  for (const calls of levels) {
    if (signal.aborted) break;
    const level = await runLevel({ ...common, mode: opts.agents, profile: opts.profile, turn: opts.turn, calls, durationS: opts.durationS, staggerMs });
    backends ??= level.backends;
    runs.push(level.run);
    log(summary(level.run));
  }
  if (!backends || runs.length === 0) return;

  let echo: CallRun | null = null;
  let piper: PiperBenchResult | null = null;
  let elevenLabs: ElevenLabsSdkOverhead | null = null;
  if (conversation && !signal.aborted) {
    // The echo path's figure (echoOverheadMs) from a short level of its own: echo calls mixed into the
    // conversation levels would change the load those levels measure.
    const calls = opts.calls ?? CALL_BUDGETS.calls;
    log(`echo level for echoOverheadMs: ${calls} calls, ${Math.min(opts.durationS, ECHO_SIDE_DURATION_S)} s`);
    echo = (await runLevel({ ...common, mode: 'echo', calls, durationS: Math.min(opts.durationS, ECHO_SIDE_DURATION_S), staggerMs: STAGGER_MS.echo })).run;
    log(summary(echo));
  }
  if (conversation && !signal.aborted) {
    log('Piper real-time factor on the test voice...');
    piper = await measurePiperRtf();
    log(`Piper RTF ${piper.rtf.toFixed(4)} (${piper.sentences} sentences)`);
    log('ElevenLabs SDK vs fetch, time to first byte against the local fake...');
    // Not a budget, and not worth failing the run over.
    elevenLabs = await measureElevenLabsSdkOverhead().catch((err: unknown) => {
      log(`ElevenLabs SDK measurement failed: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    });
  }
  log(`backends: ${backendsLabel(backends)}; ${backends.databaseDetail}`);

  const report: CallReport = {
    mode: opts.agents,
    date: new Date().toISOString(),
    command,
    runs,
    echo,
    piper,
    elevenLabs,
    backends,
    machine: describeMachine(),
    defaultWorkers: opts.workers === undefined,
    defaultStagger: opts.staggerMs === undefined,
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(callJson(report, opts.calls !== null))}\n`);
  else process.stdout.write(`\n${humanCallReport(report)}\n`);
  const interrupted = signal.aborted || [...runs, ...(echo ? [echo] : [])].some((r) => r.interrupted) || runs.length < levels.length;
  if (opts.write && !interrupted) {
    writeSection(BENCHMARKS_MD, callSectionKey(report), callMarkdownSection(report));
    log(`wrote ${BENCHMARKS_MD}`);
  } else if (opts.write) {
    log('interrupted run: BENCHMARKS.md left unchanged');
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opts = parseOptions(args);
  const command = commandLine(args);
  const interrupt = new AbortController();
  const onSignal = (): void => {
    if (interrupt.signal.aborted) {
      log('interrupted again: exiting now (a scratch database may be left behind)');
      process.exit(130);
    }
    log('\ninterrupted: stopping the load, then cleaning up (Ctrl-C again to exit at once)');
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const databaseUrl = process.env.DATABASE_URL?.trim() || undefined;
  const redisUrl = process.env.REDIS_URL?.trim() || undefined;
  try {
    if (opts.mode === 'api') await runApiBench({ ...opts, command, databaseUrl, redisUrl, signal: interrupt.signal, log });
    else await runCalls(opts, command, interrupt.signal, databaseUrl, redisUrl);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (interrupt.signal.aborted) process.exitCode = 130;
  }
}

main().catch((err: unknown) => {
  log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
