// `npm run bench`: the call benchmark (default), or the HTTP API benchmark with --api. See BENCHMARKS.md.
//   calls: [--calls N] (one level; default the sweep 1, 10, 50, 100) [--duration S] (default 30)
//          [--workers N] (media worker threads; default cores - 1) [--json] [--write]
//   API:   --api [--rate N] (default 500 req/s) [--duration S] (default 10) [--json] [--write]
// Progress goes to stderr; stdout carries only the result (exactly one JSON object with --json).
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runApiBench } from './api-bench.js';
import type { Backends } from './api-server.js';
import { runCallLevel, type CallRun } from './call-bench.js';
import { callJson, callMarkdownSection, callSectionKey, humanCallReport, type CallReport } from './call-report.js';
import { describeMachine } from './machine.js';
import { backendsLabel, writeSection } from './report.js';

const CALL_LEVELS = [1, 10, 50, 100];
const STAGGER_MS = 1000;
const BENCHMARKS_MD = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));

const log = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

type Options =
  | { mode: 'api'; rate: number; durationS: number; json: boolean; write: boolean }
  | { mode: 'calls'; calls: number | null; workers: number | undefined; durationS: number; json: boolean; write: boolean };

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
      rate: { type: 'string' },
      calls: { type: 'string' },
      workers: { type: 'string' },
      duration: { type: 'string' },
      json: { type: 'boolean' },
      write: { type: 'boolean' },
    },
    strict: true,
  });
  const json = values.json ?? false;
  const write = values.write ?? false;
  if (values.api) {
    if (values.calls !== undefined || values.workers !== undefined) throw new Error('--calls and --workers belong to the call benchmark, not --api');
    return { mode: 'api', rate: positive('rate', values.rate, 500), durationS: positive('duration', values.duration, 10), json, write };
  }
  if (values.rate !== undefined) throw new Error('--rate belongs to the API benchmark: npm run bench -- --api --rate N');
  return {
    mode: 'calls',
    calls: values.calls === undefined ? null : positive('calls', values.calls, 1, true),
    workers: values.workers === undefined ? undefined : positive('workers', values.workers, 1, true),
    durationS: positive('duration', values.duration, 30),
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
function callProgress(calls: number): { show(p: { elapsedS: number; totalS: number; utterances: number; replies: number }): void; end(): void } {
  const tty = process.stderr.isTTY;
  let shown = false;
  return {
    show(p) {
      const text = `${calls} calls: ${p.elapsedS.toFixed(0).padStart(3)}/${p.totalS} s  utterances ${p.utterances}  replies ${p.replies}`;
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

async function runCalls(opts: Extract<Options, { mode: 'calls' }>, command: string, signal: AbortSignal, databaseUrl?: string, redisUrl?: string): Promise<void> {
  const levels = opts.calls === null ? CALL_LEVELS : [opts.calls];
  log(`call benchmark, echo mode: ${levels.join(', ')} concurrent calls, ${opts.durationS} s each (${databaseUrl ? 'PostgreSQL' : 'PGlite'}, ${redisUrl ? 'Redis' : 'no Redis'})`);
  const runs: CallRun[] = [];
  let backends: Backends | null = null;
  for (const calls of levels) {
    if (signal.aborted) break;
    const progress = callProgress(calls);
    const level = await runCallLevel({
      calls,
      durationS: opts.durationS,
      staggerMs: STAGGER_MS,
      workers: opts.workers,
      databaseUrl,
      redisUrl,
      log,
      onProgress: (p) => progress.show(p),
      signal,
    });
    progress.end();
    const r = level.run;
    backends ??= level.backends;
    runs.push(r);
    log(
      `${calls} calls: overhead p50/p95/p99 ${r.overheadMs.p50}/${r.overheadMs.p95}/${r.overheadMs.p99} ms (${r.overheadMs.samples} samples), ` +
        `event-loop p99 ${r.eventLoopDelayMs.p99} ms, CPU/call ${r.cpu.perCallPct} %, RSS/call ${r.memory.rssPerCallMb} MB, ` +
        `VAD/frame ${r.vad.frameMs} ms, dropped ${r.frames.dropped}, late ${r.frames.late}`,
    );
  }
  if (!backends || runs.length === 0) return;
  log(`backends: ${backendsLabel(backends)}; ${backends.databaseDetail}`);

  const report: CallReport = { date: new Date().toISOString(), command, runs, backends, machine: describeMachine(), defaultWorkers: opts.workers === undefined };
  if (opts.json) process.stdout.write(`${JSON.stringify(callJson(report, opts.calls !== null))}\n`);
  else process.stdout.write(`\n${humanCallReport(report)}\n`);
  const interrupted = signal.aborted || runs.some((r) => r.interrupted) || runs.length < levels.length;
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
